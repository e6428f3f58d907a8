"""The lab: real Debian hosts (systemd-nspawn) on a private bridge, plus echo pods."""
