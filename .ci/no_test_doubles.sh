#!/usr/bin/env bash
# The release build holds no test double. Memory stores, flaky stores, fixture key generators,
# the memory publisher and `testing` compile only for tests and the `test-support` feature; a
# release build (`cargo build --release`, as the packaging builds it) must not name any of them,
# nor hold the committed fixture keys.
#
# The library's release rlib is searched, not only the binary: the linker drops code the binary
# never calls, so a double compiled into the library could be missing from the binary and still
# ship in the crate. Its symbols (`nm -C`: every function the library compiled, by path) must
# name no double, and its symbols must name the real adapters (FileStore, VaultStore,
# AwsLcGenerator, FilePublisher), so that a search that can see nothing fails too. Names alone
# are not searched for in the rlib's bytes: its metadata keeps the names of items that `cfg`
# left out, for rustc's "configured out" hints, without their code.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v nm >/dev/null || { echo "nm is missing: install binutils" >&2; exit 1; }
cargo build --release --locked --quiet --lib --bin jwk-rotator
rlib=target/release/libjwk_rotator.rlib
bin=target/release/jwk-rotator
[[ -s "$rlib" && -x "$bin" ]] || { echo "FAILED: $rlib or $bin was not built" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nm -C "$rlib" 2>/dev/null >"$work/rlib.sym"
nm -C "$bin" >"$work/bin.sym"

doubles=(MemoryStore FlakyStore FlakyConsumers Recording FixtureGenerator FailingGenerator MemoryPublisher
    jwk_rotator::testing:: jwk_rotator::store::memory:: jwk_rotator::store::flaky::
    jwk_rotator::store::recording:: jwk_rotator::keygen::fixture:: jwk_rotator::publish::memory::)
real=(FileStore VaultStore AwsLcGenerator FilePublisher CountingStore)
# The first fixture key's opening: a private test key, never in a release (a `const` keeps its
# value in the rlib's metadata, so the bytes are searched).
fixture=$(head -c 48 tests/data/fixture-keys.b64)

failed=0
for name in "${doubles[@]}"; do
    for sym in "$work/rlib.sym" "$work/bin.sym"; do
        if grep -q -F -- "$name" "$sym"; then
            echo "FAILED: the release build's $(basename "$sym" .sym) has symbols of $name: put it behind cfg(any(test, feature = \"test-support\"))" >&2
            grep -F -- "$name" "$sym" | head -n 3 >&2
            failed=1
        fi
    done
done
for file in "$rlib" "$bin"; do
    if grep -a -q -F -- "$fixture" "$file"; then
        echo "FAILED: $file holds the committed fixture keys (tests/data/fixture-keys.b64)" >&2
        failed=1
    fi
done
for name in "${real[@]}"; do
    if ! grep -q -F -- "$name" "$work/rlib.sym"; then
        echo "FAILED: the symbols of $rlib do not name $name: the search can not see the library's code (stripped?)" >&2
        failed=1
    fi
done
((failed == 0)) || exit 1
echo "release build: no symbol of ${#doubles[@]} test doubles and modules, nor the fixture keys, in the library or the binary; ${#real[@]} real adapters found"
