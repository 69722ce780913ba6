# Shared by images/test and images/powercut (sourced, not run): the school server on 127.0.0.1,
# slate.toml as IT fills it in, and QEMU booting the card with its console, QMP and the board's
# button. The caller sets `me` (its name, for messages), `here`, `repo`, `run`, `out_root`,
# `profile`, the array `pids` (killed on exit) and `die`.

# --- tools ------------------------------------------------------------------------------------
install_tools() {
  local need=() p
  for p in socat mtools curl openssl openssh-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
  command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 missing: run images/build once (it installs QEMU)"
}

# --- images -----------------------------------------------------------------------------------
image_of() { echo "$out_root/work/slate-$1-arm64.img"; }
ensure_image() {
  local profile=$1 force=$2
  if [ "$force" -eq 1 ] || [ ! -f "$(image_of "$profile")" ] || [ ! -f "$out_root/slate-$profile-arm64/layout" ]; then
    echo "$me: building the $profile image (images/build --profile $profile --compress zstd --reuse-rootfs)"
    "$here/build" --profile "$profile" --compress zstd --reuse-rootfs
  fi
}

# --- the school server on 127.0.0.1 -------------------------------------------------------------
school_server_bin() { # server_bin: the host's slate-server
  # SLATE_SERVER_BIN: a slate-server already built from this tree (the shared target directory's
  # release lock may be held for many minutes by another build).
  if [ -n "${SLATE_SERVER_BIN:-}" ]; then
    server_bin=$SLATE_SERVER_BIN
  else
    echo "$me: building slate-server (host)"
    cargo build --manifest-path "$repo/Cargo.toml" --release --locked -p slate-server --bin slate-server -q
    server_bin=$CARGO_TARGET_DIR/release/slate-server
  fi
}
start_school_server() { # the server, its certificate (for 10.0.2.100 and 127.0.0.1), the roster, device 12's token
  school_server_bin
  # A certificate for the address the guest uses (10.0.2.100) and the one the host uses, for two
  # days (images/powercut --dir keeps its run longer: server_cert_days).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "${server_cert_days:-2}" -subj "/CN=Slate test CA" \
    -keyout "$run/ca.key" -out "$run/ca.pem" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=slate-server" \
    -keyout "$run/server.key" -out "$run/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:10.0.2.100,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$run/ext"
  openssl x509 -req -in "$run/server.csr" -CA "$run/ca.pem" -CAkey "$run/ca.key" -CAcreateserial \
    -days "${server_cert_days:-2}" -extfile "$run/ext" -out "$run/server.pem" 2>/dev/null

  mkdir -p "$run/server-data"
  # Two classes, so the device's signed kiosk policy has a sign-in screen to show.
  printf 'class,first_name,last_name,key_stage\nOak,Amira,Khan,ks1\nOak,Ben,Okafor,ks1\nYear 5,Cara,Lewis,ks2\n' > "$run/roster.csv"
  "$server_bin" --data-dir "$run/server-data" roster import "$run/roster.csv" > "$run/roster.out" 2>&1 \
    || { cat "$run/roster.out"; die "roster import failed"; }
  token=$("$server_bin" --data-dir "$run/server-data" enrollment-token --device 12 2>"$run/token.err") \
    || { cat "$run/token.err"; die "enrollment-token failed"; }
  ssh-keygen -q -t ed25519 -N '' -C "images-$me" -f "$run/it_key"
  serve_school_server 0
}
# serve_school_server PORT: serves $run/server-data on 127.0.0.1:PORT (0: any free port), made by
# start_school_server (images/powercut --dir starts it again on the port its card was given).
serve_school_server() {
  "$server_bin" --data-dir "$run/server-data" serve --listen "127.0.0.1:$1" \
    --tls-cert "$run/server.pem" --tls-key "$run/server.key" > "$run/server.out" 2> "$run/server.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^DSL page:' "$run/server.out" 2>/dev/null && break; sleep 0.2; done
  grep -q '^DSL page:' "$run/server.out" || { cat "$run/server.log"; die "slate-server did not start"; }
  server_url=$(sed -n 's/^slate-server listening on //p' "$run/server.out")
  server_port=${server_url##*:}
  # The DSL, signed in through a one-time console recovery link (there is no shared staff key).
  dsl_session() {
    "$here/journey" session --server "https://127.0.0.1:$server_port" --ca "$run/ca.pem" \
      --cli "$server_bin" --data-dir "$run/server-data" --username d.test --role dsl
  }
  # The server's policy-signing key: slated, slate-ui and slate-dns accept only policy it signed.
  policy_key=$(sed -n 's/^policy key: //p' "$run/server.out")
  [ -n "$policy_key" ] || { cat "$run/server.out"; die "slate-server printed no policy key"; }
  echo "$me: slate-server on $server_url"
  reports() {
    curl -sS --fail --cacert "$run/ca.pem" -H "Cookie: $dsl_cookie" \
      "https://127.0.0.1:$server_port/api/v1/staff/reports"
  }
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  # The only thing the guest can reach: 10.0.2.100:8443, a fresh socat per connection to the
  # test's server on 127.0.0.1 (QEMU's chardev form of guestfwd carries a single connection).
  fwd=",guestfwd=tcp:10.0.2.100:8443-cmd:socat STDIO TCP:127.0.0.1:$server_port"
}

# --- slate.toml as IT fills it in -----------------------------------------------------------------
fill() { # fill KEY VALUE: the example's `KEY = ...` line with VALUE (a TOML string or number)
  local key=$1 value=$2
  grep -qE "^$key = " "$run/slate.toml" || die "images/slate.toml.example has no $key line"
  KEY=$key VALUE=$value awk '$1 == ENVIRON["KEY"] && $2 == "=" { print ENVIRON["KEY"] " = " ENVIRON["VALUE"]; next } { print }' \
    "$run/slate.toml" > "$run/slate.toml.new" && mv "$run/slate.toml.new" "$run/slate.toml"
}
# write_slate_toml SCHOOL: $run/slate.toml (and $run/server-ca.pem) for device 12:
# images/slate.toml.example with only the fields IT fills (device number, school, server URL, CA
# file, enrollment token, policy key) changed, nothing added. Everything else (the button, the
# display, upload timing) is the image's own default.
write_slate_toml() {
  cp "$here/slate.toml.example" "$run/slate.toml"
  fill device_number 12
  fill school "\"$1\""
  # The test's own server through QEMU's forward (10.0.2.100:8443 in the guest is
  # 127.0.0.1:$server_port on the host).
  fill url '"https://10.0.2.100:8443"'
  fill ca_certificate '"server-ca.pem"'
  fill enrollment_token "\"$token\""
  fill public_key "\"$policy_key\""
  diff <(grep -vE '^\s*(#|$)' "$here/slate.toml.example") <(grep -vE '^\s*(#|$)' "$run/slate.toml") |
    sed "s/^/$me: slate.toml differs from the example: /" || true
  cp "$run/ca.pem" "$run/server-ca.pem"
}

# add_it_pin: IT's unlock PIN ([staff] pin_hash in $run/slate.toml; the PIN in $staff_pin), to
# release a device a press holds with `slatectl unlock` over ssh. Hashed by the image's own
# slatectl (argon2id), run through qemu-user with the image's root file system as its library root.
add_it_pin() {
  local rootfs=$out_root/work/rootfs-$profile pin_hash
  staff_pin=$(( 100000 + RANDOM % 900000 ))
  [ -x "$rootfs/usr/bin/slatectl" ] || die "no $rootfs/usr/bin/slatectl: run images/build --profile $profile"
  pin_hash=$(QEMU_LD_PREFIX=$rootfs qemu-aarch64 -L "$rootfs" "$rootfs/usr/bin/slatectl" hash-pin --pin "$staff_pin") ||
    die "slatectl hash-pin failed under qemu-aarch64"
  printf '\n[staff]\npin_hash = "%s"\n' "$pin_hash" >> "$run/slate.toml"
}

# --- QEMU ------------------------------------------------------------------------------------------
# card_drive IMAGE NAME: the QEMU arguments for the SD card, in the array `drive`. A plain raw
# file here; images/powercut records every write and flush of it (blklogwrites) instead.
# The card is an SD card on an SDHCI controller, as on a Pi: the guest sees mmcblk0 with a CID
# register, which the data partition's key is bound to (/usr/lib/slate/data-unlock). QEMU's SD
# card must be a power of two in size: sd_card_fit grows the file to the next one (sparse; the
# data partition grows into it on the first boot).
sd_card_fit() { # sd_card_fit IMAGE
  local size pow=1048576
  size=$(stat -c %s "$1")
  while [ "$pow" -lt "$size" ]; do pow=$((pow * 2)); done
  [ "$pow" -eq "$size" ] || truncate -s "$pow" "$1"
}
sd_card_device=(-device sdhci-pci)
card_drive() {
  sd_card_fit "$1"
  drive=(-drive "if=none,id=card,file=$1,format=raw" "${sd_card_device[@]}" -device sd-card,drive=card)
}
qmp() { # qmp SOCK JSON-COMMAND...: runs commands after the capabilities handshake, prints replies
  local sock=$1; shift
  { echo '{"execute":"qmp_capabilities"}'; for c in "$@"; do echo "$c"; sleep 1; done; sleep 1; } |
    socat -t 5 - "UNIX-CONNECT:$sock"
}
# The machine: QEMU virt with the devices below. Its gpio-keys button (QMP system_powerdown) is
# the report button; QEMU wires it as KEY_POWER, while a Slate board's button (board/board.toml,
# board/overlays/slate.dts) sends KEY_F12. The machine's own device tree, dumped and given that
# key code, is what the guest boots with: the emulated board is wired like the real one, and the
# image's defaults (udev's /dev/input/slate-button, key KEY_F12) are tested as they ship.
qemu_machine=(-M virt -cpu max,pauth-impdef=on -smp 2 -m 1536)
qemu_devices=(-device virtio-gpu-pci -device virtio-keyboard-pci -device virtio-tablet-pci -device qemu-xhci,id=xhci)
# The Pi's serial number (the firmware puts it in the device tree's root as `serial-number`;
# the data partition's key is bound to it): board_dtb [SERIAL [DTB]] writes the tree with SERIAL
# (default board_serial) to DTB (default $run/board.dtb), as if the card were in that Pi.
board_serial=100000005a7e0012
board_dtb() {
  local serial=${1:-$board_serial} dtb=${2:-$run/board.dtb}
  command -v dtc >/dev/null || die "dtc missing: run images/build once (it installs device-tree-compiler)"
  qemu-system-aarch64 "${qemu_machine[@]/#virt/virt,dumpdtb=$run/virt.dtb}" "${qemu_devices[@]}" -display none -nic none > "$run/dumpdtb.log" 2>&1 \
    || { cat "$run/dumpdtb.log"; die "QEMU could not dump the virt machine's device tree"; }
  dtc -q -I dtb -O dts -o "$run/virt.dts" "$run/virt.dtb"
  # KEY_POWER (116, 0x74) -> KEY_F12 (88, 0x58), in the gpio-keys node only.
  awk '/gpio-keys/ { inkeys = 1 } inkeys && /linux,code = <0x74>/ { sub(/<0x74>/, "<0x58>"); done = 1 } { print } END { exit !done }' \
    "$run/virt.dts" > "$run/board.dts" || die "no KEY_POWER gpio-key in the virt machine's device tree"
  sed -i "0,/^\/ {/s//\/ {\n\tserial-number = \"$serial\";/" "$run/board.dts"
  grep -q "serial-number = \"$serial\"" "$run/board.dts" || die "could not give the device tree a serial number"
  dtc -q -I dts -O dtb -o "$dtb" "$run/board.dts"
}
# The Pi firmware's choice of kernel, initrd and command line, emulated (images/firmware reads
# config.txt, slot.txt and the slot directories from the card's boot partition as the firmware
# would). The firmware's one-shot tryboot flag is the file IMAGE.tryboot: set when the guest's
# kernel last restarted with a command containing "tryboot" (`reboot '0 tryboot'`; the kernel
# prints "reboot: Restarting system with command '0 tryboot'", the request a Pi kernel passes to
# the firmware), consumed by the next boot, as the firmware consumes its flag.
firmware_load() { # firmware_load NAME IMAGE BOOT_OFFSET: kernel, initrd, cmdline into $run/fw-NAME/
  local name=$1 image=$2 offset=$3 flag=() line f
  if [ -e "$image.tryboot" ]; then flag=(--tryboot); rm -f "$image.tryboot"; fi
  line=$("$here/firmware" "${flag[@]}" "$image@@$offset") || die "the emulated firmware found nothing to boot on $image"
  echo "$me: firmware${flag[*]:+ (tryboot)}: $line"
  fw_prefix=$(echo "$line" | sed -n 's/^os_prefix=\([^ ]*\) .*/\1/p')
  rm -rf "$run/fw-$name"; mkdir -p "$run/fw-$name"
  for f in kernel initramfs cmdline; do
    local file; file=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$f=//p")
    [ -n "$file" ] || die "the emulated firmware names no $f"
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$image@@$offset" "::/$file" "$run/fw-$name/$f" || die "cannot read $file from the boot partition"
  done
}
# After QEMU ended (the guest rebooted or powered off): set the firmware's tryboot flag for the
# card IMAGE if the guest's last restart asked for it (see firmware_load).
firmware_after() { # firmware_after NAME IMAGE
  if grep -aqE "reboot: Restarting system with command '[^']*tryboot" "$run/$1.serial" 2>/dev/null; then
    touch "$2.tryboot"; echo "$me: the guest rebooted with '0 tryboot': the firmware's one-shot flag is set"
  fi
}
boot() { # boot NAME IMAGE KERNEL_DIR EXTRA_NETDEV BOOT_OFFSET [QEMU_ARG...]: starts QEMU in the
  # background (an xhci controller for the USB stick test; guestfwd/hostfwd rules in EXTRA_NETDEV).
  # Kernel, initrd and command line come from the card's boot partition through the emulated
  # firmware (firmware_load); KERNEL_DIR is no longer read (kept for callers).
  local name=$1 image=$2 netdev=$4 offset=$5 cmdline nic
  shift 5
  local extra=("$@")
  # EXTRA_NETDEV "none": no network card at all.
  nic=(-netdev "user,id=n0,restrict=on$netdev" -device virtio-net-pci,netdev=n0,romfile=)
  [ "$netdev" != none ] || nic=(-nic none)
  rm -f "$run/$name.serial"
  card_drive "$image" "$name"
  # The image's own kernel command line (cmdline.txt on its boot partition), with the Pi's
  # serial0 as the virt machine's PL011; panic=-1 so a panic ends the run.
  firmware_load "$name" "$image" "$offset"
  cmdline=$(tr -d '\r\n' < "$run/fw-$name/cmdline")
  cmdline="$(echo "$cmdline" | sed -e 's/console=serial0,115200/console=ttyAMA0/' -e 's/^ *//') panic=-1"
  # Development: SLATE_TEST_RUST_LOG=slate_ui=debug,info puts every unit's RUST_LOG in the guest.
  [ -z "${SLATE_TEST_RUST_LOG:-}" ] || cmdline="$cmdline systemd.setenv=RUST_LOG=$SLATE_TEST_RUST_LOG"
  # The caller's own additions (images/powercut: patience for a starved emulator).
  [ -z "${boot_cmdline_extra:-}" ] || cmdline="$cmdline $boot_cmdline_extra"
  echo "$me: kernel command line: $cmdline"
  # The kiosk plays sound: an HD Audio card whose output QEMU writes to $run/NAME.wav, so the
  # test hears from outside the guest whether anything plays.
  local sound=()
  [ "$profile" != kiosk ] || sound=(-audiodev "wav,id=snd0,path=$run/$name.wav" -device ich9-intel-hda -device hda-output,audiodev=snd0)
  # The Pi the card is in: boot_dtb (board_dtb's output; another serial is another Pi).
  qemu-system-aarch64 "${qemu_machine[@]}" -dtb "${boot_dtb:-$run/board.dtb}" "${sound[@]}" \
    -kernel "$run/fw-$name/kernel" -initrd "$run/fw-$name/initramfs" \
    -append "$cmdline" \
    "${drive[@]}" \
    "${nic[@]}" \
    "${qemu_devices[@]}" "${extra[@]}" \
    -serial "file:$run/$name.serial" -display none -no-reboot \
    -qmp "unix:$run/$name.qmp,server=on,wait=off" > "$run/$name.qemu.log" 2>&1 &
  qemu_pid=$!
  pids+=("$qemu_pid")
}
wait_serial() { # wait_serial NAME REGEX TIMEOUT
  local name=$1 re=$2 limit=$3 t0; t0=$(date +%s)
  while ! grep -aqE "$re" "$run/$name.serial" 2>/dev/null; do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$run/$name.qemu.log"; tail -30 "$run/$name.serial"; die "QEMU ($name) exited"; }
    if [ $(( $(date +%s) - t0 )) -ge "$limit" ]; then
      tail -40 "$run/$name.serial" | tr -d '\r'
      die "no /$re/ on the $name serial console within ${limit}s"
    fi
    sleep 0.5
  done
}

