from airquill.cli import main

raise SystemExit(main())
