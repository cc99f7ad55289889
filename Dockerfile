# metronome: multi-stage build, small non-root final image.
# The binary bundles the IANA time zone database (jiff); the distroless
# base brings CA roots (/etc/ssl/certs) for rediss://, amqps:// and TLS
# databases. No shell: the HEALTHCHECK runs the binary itself.
# Configuration is entirely from the environment (METRONOME_*).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
# The same command .ci/run builds and probes with `metronome healthcheck`.
RUN cargo build --release --locked --bin metronome && strip target/release/metronome
# The state directory, owned by the image's non-root user (uid 65532).
RUN mkdir -p /out/state

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/metronome /usr/local/bin/metronome
COPY --from=build --chown=65532:65532 /out/state /var/lib/metronome
COPY schedules /etc/metronome/schedules
USER nonroot:nonroot
WORKDIR /var/lib/metronome
ENV METRONOME_SCHEDULE=/etc/metronome/schedules/example.yaml \
    METRONOME_STATE_FILE=/var/lib/metronome/state.json \
    METRONOME_HTTP_ADDR=0.0.0.0:8080 \
    METRONOME_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/metronome", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/metronome"]
CMD ["run"]
