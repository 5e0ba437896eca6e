import sys

from es_framework.cli import main

sys.exit(main())
