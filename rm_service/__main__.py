import sys

from rm_service.core.cli import main

sys.exit(main())
