# Container image for jwk-rotator.
#
#   docker build -t jwk-rotator .
#   docker run --rm -v "$PWD/jwk-rotator.toml:/config/jwk-rotator.toml:ro" \
#     jwk-rotator --config /config/jwk-rotator.toml status
#
# Plain Dockerfile syntax only, no BuildKit extensions (no `# syntax=` line, no RUN --mount,
# no heredocs), so that the legacy builder and ACR quick builds (`az acr build`) build it too;
# .ci/check_dockerfile.py checks that. The release builds it once per architecture on a
# native runner (linux/amd64, linux/arm64).
#
# The build stage and the runtime stage are both Debian 13 (trixie), so the binary links
# against the same glibc it runs with (.ci/check_dockerfile.py checks that they match).
#
# Both base images are tags their maintainers rebuild, checked in .ci/external-ids.toml:
# rust:1-trixie is the current stable Rust (the channel the release binaries are built with,
# and at least rust-version in Cargo.toml) on trixie; docker-library stops rebuilding a tag that
# names one Rust release (1.95-bookworm) at the next release. Their digests can not be looked
# up from here; Dependabot (docker) proposes digest and tag updates.

FROM rust:1-trixie AS build
WORKDIR /src
# The whole package (filtered by .dockerignore): Cargo.toml names its benches and tests,
# so cargo needs them present even for a binary-only build.
COPY . .
RUN cargo build --release --locked --bin jwk-rotator \
    && install -D -m 0755 target/release/jwk-rotator /out/jwk-rotator \
    && rm -rf target

# distroless/cc: glibc, libgcc, CA certificates and tzdata, no shell, no package manager.
# Debian 13: distroless supports its Debian 12 images until September 2026 only.
FROM gcr.io/distroless/cc-debian13:nonroot
LABEL org.opencontainers.image.title="jwk-rotator" \
      org.opencontainers.image.description="Rotates Maskinporten client keys (RSA JWKs) in Azure Key Vault or a local directory" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/jwk-rotator /usr/local/bin/jwk-rotator
# 65532 is the "nonroot" user of the distroless images. The publish directory must be a
# writable mount (an emptyDir in Kubernetes, an EmptyDir volume in Container Apps).
USER 65532:65532
WORKDIR /work
ENV JWK_ROTATOR_CONFIG=/config/jwk-rotator.toml
# worker mode serves /healthz and /metrics here
EXPOSE 9464
#checkov:skip=CKV_DOCKER_2: The image mostly runs one-shot jobs (rotate) where a HEALTHCHECK is meaningless; worker mode is probed by the orchestrator on /healthz (Kubernetes probes), and distroless has no shell or curl to run a check with.
ENTRYPOINT ["jwk-rotator"]
CMD ["--help"]
