"""Operating a tunnel: status over a control socket, TOML config, logs, signals, privilege
drop, sd_notify, heap trimming. May import the layers below: plugin, datapath, wire, errors.
"""
