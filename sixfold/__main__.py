from sixfold.cli import main

raise SystemExit(main())
