from offrl.cli import main

main()
