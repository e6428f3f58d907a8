from nodeport_lb.cli import main

raise SystemExit(main())
