# hookline-api: build in the Rust image, run as a non-root user in a small Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hookline-api

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 hookline
COPY --from=build /src/target/release/hookline-api /usr/local/bin/hookline-api
USER 10001
ENV HOOKLINE__HTTP__BIND=0.0.0.0:8080
# The admin listener (/metrics, probes): reachable by the orchestrator and the scraper, never
# published to the internet.
ENV HOOKLINE__ADMIN__BIND=0.0.0.0:9091
EXPOSE 8080 9091
HEALTHCHECK CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/hookline-api"]
