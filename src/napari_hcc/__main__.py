import sys

from napari_hcc.cli import main

sys.exit(main())
