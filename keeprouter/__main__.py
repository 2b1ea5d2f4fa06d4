from keeprouter.cli import main

main()
