# metronome: multi-stage build, small non-root final image.
# The binary bundles the IANA time zone database (jiff) and needs no shell.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY migrations ./migrations
RUN cargo build --release --locked --bin metronome && strip target/release/metronome

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/metronome /usr/local/bin/metronome
COPY schedules /etc/metronome/schedules
USER nonroot:nonroot
WORKDIR /var/lib/metronome
ENV METRONOME_SCHEDULE=/etc/metronome/schedules/example.yaml \
    METRONOME_STATE_FILE=/var/lib/metronome/state.json \
    METRONOME_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/metronome"]
CMD ["run"]
