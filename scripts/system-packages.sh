#!/usr/bin/env bash
# System libraries voxwire uses, by purpose: `serve` (the engine and the CLI) or `test`
# (the suite's browser and second voice). Where apt-get and dpkg exist, the missing Debian
# packages are installed; elsewhere this prints what to install by hand and exits 0, so
# the Python set-up goes on (voxwire serves without them; see docs/development.md, "Set-up").
set -euo pipefail

purpose=${1:-serve}
case "$purpose" in
  serve) debian=(libportaudio2) ;;
  test) debian=(espeak-ng libportaudio2 chromium chromium-driver) ;;
  *) echo "usage: $0 serve|test" >&2; exit 2 ;;
esac

if command -v dpkg >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${debian[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  exit 0
fi

echo "voxwire set-up: no apt-get here, so these system libraries are not installed for you."
echo "  needed: PortAudio (voxwire mic and speak)"
if [ "$purpose" = test ]; then
  echo "  and for the tests: espeak-ng (a second voice), Chromium and its chromedriver (the browser)"
fi
case "$(uname -s)" in
  Darwin) echo "  install with: brew install portaudio$([ "$purpose" = test ] && echo ' espeak-ng && brew install --cask chromium chromedriver')" ;;
  *)
    if command -v dnf >/dev/null 2>&1; then
      echo "  install with: sudo dnf install portaudio$([ "$purpose" = test ] && echo ' espeak-ng chromium chromedriver')"
    elif command -v pacman >/dev/null 2>&1; then
      echo "  install with: sudo pacman -S portaudio$([ "$purpose" = test ] && echo ' espeak-ng chromium')"
    else
      echo "  install PortAudio$([ "$purpose" = test ] && echo ', espeak-ng, Chromium and chromedriver') with your system's package manager"
    fi
    ;;
esac
echo "continuing with the Python set-up: voxwire serves without them."
