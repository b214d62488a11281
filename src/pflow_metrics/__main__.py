from pflow_metrics.cli.app import main

main()
