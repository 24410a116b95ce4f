from offboard.cli import main

main()
