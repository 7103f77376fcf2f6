import sys

from jaxmicro.cli import main

sys.exit(main())
