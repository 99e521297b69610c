"""What the pipeline's stages do, one module each, so that `vxcap.pipeline` reads as the
order of the stages and nothing else: the capture filters, the MTU probes and the live packet
counts of a run; the decode and its scapy spot-check; the flow views, the MTU verdicts and the
node tables' part of judging; Wireshark's part of the report; and the stage timer. They drive
a Target (vxcap.targets) or read a run directory (through vxcap.adapters.rundir), and know
nothing of the CLI."""
