from mobctl.cli.app import main

raise SystemExit(main())
