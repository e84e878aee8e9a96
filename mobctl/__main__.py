from mobctl.cli.app import main

main()
