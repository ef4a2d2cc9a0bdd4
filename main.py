"""Start the StyleStudio editor (``python main.py``); same as running ``stylestudio`` with no arguments."""
import sys

from stylestudio.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
