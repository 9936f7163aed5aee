from shiftright_server.infra.cli.root import main

main()
