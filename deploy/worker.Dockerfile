# hookline-worker: build in the Rust image, run as a non-root user in a small Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hookline-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 hookline
COPY --from=build /src/target/release/hookline-worker /usr/local/bin/hookline-worker
USER 10001
ENV HOOKLINE__WORKER__HTTP_BIND=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/hookline-worker"]
