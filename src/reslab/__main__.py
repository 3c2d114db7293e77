from reslab.cli import main

raise SystemExit(main())
