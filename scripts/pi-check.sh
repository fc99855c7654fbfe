#!/usr/bin/env bash
# Prove the Raspberry Pi install without a Pi: build arm64 Debian 12 (bookworm, Pi OS 12) and 13
# (trixie, Pi OS 13) root file systems with debootstrap, run the README's set-up in each under
# qemu-user, replay the demo clip headless and as a GUI screenshot, compare the labels with a
# native run, and estimate the per-hop cost on a Pi 4 and a Pi 5 from instruction counts.
#
# Usage (as root, on an x86_64 Debian/Ubuntu host; slow: about an hour per release on 2 cores):
#   scripts/pi-check.sh [RELEASE...]            default: bookworm trixie
# Environment: PI_CHECK_DIR (work folder, default /var/tmp/ser-live-pi-check; never inside the repo),
#   NATIVE_PYTHON (python with ser-live's dependencies for the native run, default .venv/bin/python),
#   PI_CHECK_COUNT (bookworm|trixie|none: where to count instructions, default trixie: bookworm's
#   valgrind 3.19 aborts reading the debug information of one of the wheels).
#
# Emulated wall-clock times say nothing about a Pi and are not printed. The cost estimate counts
# the instructions a hop executes (valgrind's callgrind inside the rootfs, with qemu emulating the
# Pi's own core so numpy and LiteRT pick the same kernels) and converts them to time with a stated
# clock and an assumed range of instructions per cycle.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=${PI_CHECK_DIR:-/var/tmp/ser-live-pi-check}
native_python=${NATIVE_PYTHON:-$repo/.venv/bin/python}
count_in=${PI_CHECK_COUNT:-trixie}
releases=("$@")
((${#releases[@]})) || releases=(bookworm trixie)
mirror=http://deb.debian.org/debian
demo=assets/demo/ser-live-demo.flac
demo_repeats=2  # the long clip for the instruction-count difference: the demo this many times
qemu_min_major=8  # bookworm's qemu 7.2 segfaults inside LiteRT's Interpreter()

[[ $(id -u) -eq 0 ]] || { echo "pi-check: run as root (debootstrap, chroot, binfmt_misc)" >&2; exit 2; }
[[ -x "$native_python" ]] || { echo "pi-check: no native python at $native_python (set NATIVE_PYTHON)" >&2; exit 2; }
mkdir -p "$work/out"
log() { printf 'pi-check: %s\n' "$*" >&2; }

need=()
for tool in debootstrap xvfb-run sox callgrind_annotate; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  pkgs=("${need[@]/xvfb-run/xvfb}")
  pkgs=("${pkgs[@]/callgrind_annotate/valgrind}")
  log "installing host tools: ${pkgs[*]}"
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" xauth >/dev/null
fi

# --- a qemu-aarch64 >= 8: the host's if new enough, else Debian's from bookworm-backports ---
qemu_major() { "$1" --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p'; }
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [[ -z "$qemu" || $(qemu_major "$qemu") -lt $qemu_min_major ]]; then
  qemu=$work/qemu/usr/bin/qemu-aarch64
  if [[ ! -x "$qemu" ]]; then
    log "host qemu-aarch64 missing or < $qemu_min_major: fetching Debian's qemu-user from bookworm-backports"
    apt_dir=$work/apt
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/debs"
    echo "deb $mirror bookworm-backports main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Acquire::Languages=none
      -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq qemu-user/bookworm-backports)
    dpkg-deb -x "$work"/debs/qemu-user_*.deb "$work/qemu"
  fi
fi
log "emulator: $("$qemu" --version | head -1)"

# Register it for aarch64 ELF files; F opens the (static) interpreter now, so it works inside chroots.
# The newest entry is matched first, so an older qemu registered by the host's packages is left
# alone; the entry is this run's own, so two runs (one per release) can go side by side.
binfmt=/proc/sys/fs/binfmt_misc
[[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc $binfmt
entry=ser-live-aarch64-$$
magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
echo ":$entry:M::$magic:$mask:$qemu:F" >$binfmt/register

# --- the native reference: same tree, this machine ---
run=$(mktemp -d "$work/out/run.XXXXXX")
sox "$demo" "$run/demo-long.flac" repeat $((demo_repeats - 1))
log "native headless replay"
PYTHONPATH=$repo "$native_python" -m ser_live --headless --input "$demo" --fast >"$run/native.jsonl"

mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  [[ -e $binfmt/$entry ]] && echo -1 >"$binfmt/$entry" || true
}
trap cleanup EXIT
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mounted+=("$2"); }

compare() {  # compare NATIVE.jsonl EMULATED.jsonl: same speech flags and labels, largest probability gap
  "$native_python" - "$1" "$2" <<'EOF'
import json, sys
a = [json.loads(line) for line in open(sys.argv[1])]
b = [json.loads(line) for line in open(sys.argv[2])]
same = len(a) == len(b) and all(x["speech"] == y["speech"] and x["label"] == y["label"] for x, y in zip(a, b))
gap = max((abs(x["probs"][k] - y["probs"][k]) for x, y in zip(a, b) if x["probs"] and y["probs"]
           for k in x["probs"]), default=0.0)
labels = [x["label"] for x in b if x["label"]]
print(f"{len(b)} records, {len(labels)} with speech; labels {'SAME as' if same else 'DIFFERENT from'} native; "
      f"largest probability difference {gap:.4f}")
sys.exit(0 if same else 1)
EOF
}

status=0
for release in "${releases[@]}"; do
  root=$work/$release
  out=$work/out/$release
  mkdir -p "$out"
  if [[ ! -e $root/.pi-check-bootstrapped ]]; then
    log "$release: debootstrap arm64 (emulated second stage)"
    rm -rf "$root"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
      "$release" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || { tail "$out/debootstrap.log"; exit 1; }
    touch "$root/.pi-check-bootstrapped"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  bind /proc "$root/proc"; bind /sys "$root/sys"; bind /dev "$root/dev"; bind /dev/pts "$root/dev/pts"
  mkdir -p -m 1777 /tmp/.X11-unix
  bind /tmp/.X11-unix "$root/tmp/.X11-unix"
  # The tree as it is checked out (tracked files), where a user would have cloned it.
  rm -rf "$root/opt/ser-live"; mkdir -p "$root/opt/ser-live"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$root/opt/ser-live"
  cp "$run/demo-long.flac" "$root/opt/demo-long.flac"
  # pip inside gets this machine's CA bundle: here PyPI may be reached through a proxy with its own
  # CA (on a real Pi the system's bundle does).
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-certificates.crt"
  in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      PIP_CERT=/etc/ssl/host-ca-certificates.crt "$@"
  }

  log "$release: the README's set-up (scripts/setup.sh), pinned packages from wheels only"
  # PIP_ONLY_BINARY names every pinned package: pip must fail rather than build one from source.
  only_binary=$(grep -oE '^[A-Za-z0-9_.-]+' requirements/constraints.txt | paste -sd, -)
  in_root PIP_ONLY_BINARY="$only_binary" bash -c 'cd /opt/ser-live && scripts/setup.sh' \
    >"$out/setup.log" 2>&1 || { tail -20 "$out/setup.log"; status=1; continue; }
  in_root bash -c '. /etc/os-release; echo "$PRETTY_NAME, $(python3 -V), glibc $(getconf GNU_LIBC_VERSION | cut -d" " -f2)"' |
    sed "s/^/  $release: /"
  in_root /opt/ser-live/.venv/bin/python -m pip list --format=freeze 2>/dev/null |
    grep -iE '^(numpy|pyqt6|pyqt6-qt6|ai-edge-litert|onnxruntime|soxr|soundfile|sounddevice|pyqtgraph)==' |
    paste -sd' ' - | sed "s/^/  $release: installed /"

  log "$release: headless replay of the demo clip (emulated)"
  in_root bash -c 'cd /opt/ser-live && .venv/bin/ser-live --headless --input assets/demo/ser-live-demo.flac --fast' \
    >"$out/emulated.jsonl" 2>"$out/headless.err" || { cat "$out/headless.err"; status=1; }
  printf '  %s: ' "$release"; compare "$run/native.jsonl" "$out/emulated.jsonl" || status=1

  log "$release: GUI screenshot under Xvfb (emulated)"
  rm -f "$root/opt/screenshot.png"
  xvfb-run -a -s "-screen 0 1280x800x24 -ac" bash -c \
    "chroot '$root' /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY=\$DISPLAY \
     bash -c 'cd /opt/ser-live && .venv/bin/ser-live --input assets/demo/ser-live-demo.flac --duration 6 \
     --screenshot /opt/screenshot.png'" >"$out/gui.log" 2>&1 || { tail "$out/gui.log"; status=1; }
  if [[ -s $root/opt/screenshot.png ]]; then
    cp "$root/opt/screenshot.png" "$out/screenshot.png"; echo "  $release: screenshot $out/screenshot.png"
  else
    echo "  $release: NO screenshot (see $out/gui.log)"; status=1
  fi

  if [[ $count_in == "$release" ]]; then
    log "$release: instruction counts under callgrind (slow)"
    in_root bash -c 'command -v valgrind >/dev/null || (apt-get install -y -qq --no-install-recommends valgrind >/dev/null)'
    : >"$out/counts.txt"
    for cpu in cortex-a72 cortex-a76; do
      for clip in assets/demo/ser-live-demo.flac /opt/demo-long.flac; do
        key=$cpu-$(basename "$clip" .flac)
        in_root QEMU_CPU=$cpu bash -c "cd /opt/ser-live && valgrind --tool=callgrind \
          --callgrind-out-file=/tmp/cg-$key.out .venv/bin/python -m ser_live --headless --input $clip --fast" \
          >"$out/$key.jsonl" 2>"$out/$key.callgrind.log" || { tail "$out/$key.callgrind.log"; status=1; continue; }
        # start_thread (glibc, with libc6-dbg) holds all that threads other than the main one did: the
        # worker's analysis of every window, the file replay, the runtimes' pools; not start-up.
        # (awk reads to the end: an early exit would kill callgrind_annotate with SIGPIPE, and
        # under pipefail and set -e that silently ended the whole script after the first count)
        threads=$(callgrind_annotate --inclusive=yes "$root/tmp/cg-$key.out" |
          awk '/:start_thread / && !found { gsub(",", "", $1); print $1; found = 1 }')
        echo "$cpu $clip $(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$key.callgrind.log") \
          ${threads:-0} $(wc -l <"$out/$key.jsonl")" >>"$out/counts.txt"
      done
    done
    # Per hop, two ways: the threads' instructions over the windows of one run, and the difference
    # between the long and the short clip (which cancels start-up and model loading). Time:
    # instructions / (IPC x clock). Clocks: Pi 4 Cortex-A72 1.5 GHz (1.8 GHz on boards from 2022),
    # Pi 5 Cortex-A76 2.4 GHz. IPC is assumed, not measured: 0.5-1.0 on the A72 and 0.8-1.5 on the
    # A76 for this mix of interpreter code and vectorised numpy/LiteRT/onnxruntime kernels.
    "$native_python" scripts/pi_estimate.py "$out/counts.txt"
  fi
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}"; done
  mounted=()
done
exit $status
