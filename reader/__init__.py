"""Reading: answers from retrieved passages (extractive spans or cited generated text, with abstention), labels from
labeled examples, and completions from the local language model."""
