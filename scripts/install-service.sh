#!/usr/bin/env bash
# Install ser-live as a headless service that starts at boot on the input device DEVICE (a name or
# part of one, as `ser-live --list-devices` shows it, or an index). Run scripts/setup.sh first.
# Usage: sudo scripts/install-service.sh DEVICE          install, enable and start ser-live@DEVICE
#        scripts/install-service.sh --print DEVICE       print the unit and the commands, change nothing
# The unit is systemd/ser-live@.service with this checkout's path and owner filled in.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
print=0
if [[ "${1:-}" == "--print" ]]; then print=1; shift; fi
(($# == 1)) || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
device=$1
owner=$(stat -c %U "$repo")
instance=$(systemd-escape "$device")
unit=$(sed -e "s#/opt/ser-live#$repo#g" -e "s#^User=pi\$#User=$owner#" systemd/ser-live@.service)
commands=("systemctl daemon-reload" "systemctl enable --now ser-live@$instance.service")

if ((print)); then
  printf '%s\n' "$unit"
  printf '# then: %s\n' "${commands[@]}" >&2
  exit 0
fi
[[ -x $repo/.venv/bin/ser-live ]] || { echo "install-service: run scripts/setup.sh first" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "install-service: run as root (sudo)" >&2; exit 2; }
printf '%s\n' "$unit" >/etc/systemd/system/ser-live@.service
for c in "${commands[@]}"; do $c; done
echo "install-service: ser-live@$instance.service runs as $owner, records in /var/lib/ser-live/$instance/;" \
  "follow it with: journalctl -u 'ser-live@*' -f"
