from bulkref.cli import main

main()
