#!/usr/bin/env bash
# The release's packaging, run for the host target as .github/workflows/release.yml runs it for
# every target, with the same script (scripts/release.sh):
#
#   1. a release build of the binary, its completions and man page (`man -l` must render it);
#   2. the archive and its .sha256 file; verify: the checksum, exactly the release layout, the
#      bash completion loads, the binary inside prints `jwk-rotator X.Y.Z` for the tag vX.Y.Z of
#      Cargo.toml's version, the man page inside renders;
#   3. verify fails on a changed archive, a missing file and a binary of another version, so a
#      verify that checks nothing fails here;
#   4. the static-link check (the musl targets' check) accepts `gcc -static-pie` and `gcc -static`
#      programs and refuses a dynamically linked `gcc` program and a file that is not ELF.
#
# Needs gcc, readelf, file, man, tar and sha256sum; installs binutils, file and man-db with apt
# when one is missing (a fresh CI machine has the Rust toolchain, gcc and python3).
set -euo pipefail
cd "$(dirname "$0")/.."

release=scripts/release.sh
checks=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n==> %s\n' "$*"; }
pass() {
    checks=$((checks + 1))
    echo "ok: $*"
}

# Runs a command that must fail with a message containing NEEDLE.
expect_failure() {
    local what=$1 needle=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        echo "FAILED: $what was accepted:" >&2
        echo "$out" >&2
        exit 1
    fi
    if [[ "$out" != *"$needle"* ]]; then
        echo "FAILED: $what failed without saying \"$needle\":" >&2
        echo "$out" >&2
        exit 1
    fi
    pass "$what is refused: ${out##*release.sh: }"
}

install_missing() {
    local missing=()
    command -v readelf >/dev/null || missing+=(binutils)
    command -v file >/dev/null || missing+=(file)
    command -v man >/dev/null || missing+=(man-db)
    if ((${#missing[@]})); then
        step "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v gcc >/dev/null || { echo "gcc is missing: the static-link check's test builds C programs with it" >&2; exit 1; }
}

install_missing
host=$(rustc -vV | sed -n 's/^host: //p')
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tag="v$version"

step "release build for $host, completions and man page"
cargo build --release --locked --quiet --bin jwk-rotator
bin=target/release/jwk-rotator
bash "$release" docs "$bin" "$work/generated"
bash "$release" check-man "$work/generated/jwk-rotator.1"
pass "man -l renders the man page"

step "archive $tag for $host, and verify it as a user would"
archive=$(bash "$release" archive "$host" "$tag" "$bin" "$work/generated" "$work/dist")
bash "$release" verify "$archive" "$tag" --run --man
pass "the archive unpacks, its checksum verifies, --version prints jwk-rotator $version"

step "verify refuses a damaged archive"
cp "$archive" "$work/changed.tar.gz"
cp "$archive.sha256" "$work/changed.sha256"
printf 'x' >>"$archive"
expect_failure "a changed archive" "does not match" bash "$release" verify "$archive" "$tag"
cp "$work/changed.tar.gz" "$archive"
name=$(basename "$archive" .tar.gz)
mkdir "$work/unpacked"
tar -xzf "$archive" -C "$work/unpacked"
rm "$work/unpacked/$name/jwk-rotator.1"
(cd "$work/unpacked" && tar -czf "$archive" "$name")
(cd "$(dirname "$archive")" && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")
expect_failure "an archive without the man page" "does not hold the release layout" bash "$release" verify "$archive" "$tag"
other=$(bash "$release" archive "$host" "v$version-1" "$bin" "$work/generated" "$work/other" 2>/dev/null || true)
if [[ -n "$other" ]]; then
    echo "FAILED: archive accepted the tag v$version-1, which is not vX.Y.Z" >&2
    exit 1
fi
other=$(bash "$release" archive "$host" "v0.0.0" "$bin" "$work/generated" "$work/other" 2>/dev/null)
expect_failure "a binary of another version" "--version prints" bash "$release" verify "$other" v0.0.0 --run

step "the static-link check: static-pie and static accepted, dynamic refused"
printf '#include <stdio.h>\nint main(void) { puts("static"); return 0; }\n' >"$work/hello.c"
gcc -static-pie -O1 -o "$work/static-pie" "$work/hello.c"
gcc -static -O1 -o "$work/static" "$work/hello.c"
gcc -O1 -o "$work/dynamic" "$work/hello.c"
"$work/static-pie" >/dev/null
bash "$release" check-static "$work/static-pie"
pass "a gcc -static-pie program is accepted ($(file -b "$work/static-pie" | cut -d, -f1-4))"
bash "$release" check-static "$work/static"
pass "a gcc -static program is accepted"
expect_failure "a dynamically linked gcc program" "is dynamically linked" bash "$release" check-static "$work/dynamic"
expect_failure "the host's (glibc, dynamic) release binary" "is dynamically linked" bash "$release" check-static "$bin"
expect_failure "a file that is not ELF" "is not an ELF file" bash "$release" check-static README.md

printf '\nrelease packaging: %d checks passed\n' "$checks"
