from bulkref.cli.main import main

main()
