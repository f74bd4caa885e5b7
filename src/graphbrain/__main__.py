from graphbrain.cli import main

raise SystemExit(main())
