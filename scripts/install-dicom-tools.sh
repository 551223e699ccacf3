#!/usr/bin/env bash
# Installs the independent DICOM peers the imaging tests and benchmarks use, when missing:
#   orthanc     (Orthanc, the PACS the Edge Server queries and moves from)
#   dcmtk       (storescu / storescp / findscu / movescu / dcmdump: a modality and a reference SCP)
#   dicom3tools (dciodvfy: the IOD validator every generated KOS must pass)
# Idempotent and quiet: does nothing when every tool is present, runs `apt-get update` at most
# once, and exits 0 with a message when apt is unavailable (tests that need a tool then skip).
set -u

declare -A TOOL_OF=([orthanc]=Orthanc [dcmtk]=storescu [dicom3tools]=dciodvfy)
missing=()
for package in orthanc dcmtk dicom3tools; do
  command -v "${TOOL_OF[$package]}" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-dicom-tools: apt-get not available; missing: ${missing[*]} (DICOM peer tests will skip)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-dicom-tools: not root and no password-less sudo; missing: ${missing[*]} (DICOM peer tests will skip)"
    exit 0
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-dicom-tools: installing ${missing[*]}"
if ! $SUDO apt-get update -qq >/dev/null 2>&1; then
  echo "install-dicom-tools: apt-get update failed (DICOM peer tests will skip)"
  exit 0
fi
# --no-install-recommends keeps Orthanc's optional plugins and documentation out.
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  echo "install-dicom-tools: apt-get install ${missing[*]} failed (DICOM peer tests will skip)"
  exit 0
fi
# Debian starts the packaged Orthanc as a system service; the tests run their own instances,
# so stop the service when a service manager is present (ignore failures: containers have none).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet orthanc 2>/dev/null; then
  $SUDO systemctl stop orthanc >/dev/null 2>&1 || true
  $SUDO systemctl disable orthanc >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1 && [ -x /etc/init.d/orthanc ]; then
  $SUDO service orthanc stop >/dev/null 2>&1 || true
fi
for package in "${missing[@]}"; do
  command -v "${TOOL_OF[$package]}" >/dev/null 2>&1 || echo "install-dicom-tools: ${TOOL_OF[$package]} still missing after installing $package"
done
exit 0
