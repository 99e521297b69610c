"""The embedded lab, as data: its description (spec: the lab file), generated labs of any size
(gen), the ip/bridge steps that build, check and tear it down (plan), and the faults it can be
broken with (faults). Pure like the rest of core: vxcap.adapters.lab runs the steps."""
