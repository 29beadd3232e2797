# syntax=docker/dockerfile:1
# chaos-conductor: a static (musl) release binary on distroless/static, running as 65532:65532.
#
#   docker build -t chaos-conductor:0.1.0 .
#
# Build stage: Rust 1.95, the toolchain the project is developed with (Cargo.toml rust-version is the floor).
# musl-tools provides musl-gcc for the C parts of dependencies (ring).
FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${TARGET}"
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never
WORKDIR /src
# The whole context as filtered by .dockerignore (Cargo.toml may name tests/benches targets, whose
# files cargo wants to see even when building only the binary).
COPY . .
# Cache mounts keep the registry and the target folder between builds (BuildKit); the binary is
# copied out of the cached target folder so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --target "${TARGET}" --bin chaos-conductor \
 && cp "target/${TARGET}/release/chaos-conductor" /chaos-conductor

# Final stage: no shell, no package manager; nonroot is uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="chaos-conductor" \
      org.opencontainers.image.description="Runs LitmusChaos ChaosEngines without per-engine runner pods" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /chaos-conductor /chaos-conductor
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/chaos-conductor"]
CMD ["run"]
