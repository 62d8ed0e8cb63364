from feedbackctl.cli import main

main()
