from vxcap.cli.main import main

main()
