"""``python -m bulkref``."""

from bulkref.cli.main import main

# Guarded: a process started by multiprocessing's spawn (the export's second
# writing process, on Windows and macOS or beside the web app's threads)
# imports this module again as ``__mp_main__``, and must not run the command.
if __name__ == "__main__":
    main()
