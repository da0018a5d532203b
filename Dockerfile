# The router image: a static binary on distroless, running as non-root.
#   make docker-build IMG=switchyard-router:dev
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /router ./cmd/router

FROM gcr.io/distroless/static:nonroot
COPY --from=build /router /router
USER 65532:65532
ENTRYPOINT ["/router"]
