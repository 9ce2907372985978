// Transport security for Strata's gRPC ports and channels: TLS from PEM files
// given by flags, mutual TLS where the peer must prove who it is, and
// plaintext only when nothing is configured.
//
//   client port    server TLS (--tls-cert/--tls-key); with --tls-client-ca the
//                  client must present a certificate that CA signed.
//   worker port    mutual TLS (--worker-tls-cert/--worker-tls-key/--worker-tls-ca):
//                  a worker is admitted only with a certificate the worker CA
//                  signed; the coordinator's certificate is checked by the
//                  worker against its --tls-ca.
//
// Certificates are reloaded: gRPC's FileWatcherCertificateProvider re-reads
// the files every reload_interval, so a Kubernetes Secret rotated by
// cert-manager (an atomic symlink swap) takes effect on new connections
// without a restart; connections already open keep their session.
//
// The files are checked once when credentials are made (readable, PEM that
// parses, the key matches the certificate, the certificate not expired), so
// a mistake is a clear startup error naming the file and never a silent
// handshake failure later. gRPC's watcher keeps the last good pair when a
// rotation writes a broken one.
//
// Thread ownership: stateless functions; the returned credentials are
// thread-safe (gRPC's).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace strata::net {

// PEM files of one end of a connection.
struct TlsFiles {
  std::string cert;  // certificate chain, leaf first
  std::string key;   // private key of the leaf certificate
  std::string ca;    // CA bundle that verifies the peer's certificate
};

// A listening port. Plaintext when cert and key are both empty.
struct ServerSecurity {
  TlsFiles files;
  // Mutual TLS: a client must present a certificate that files.ca verifies;
  // the handshake fails without one. Needs files.ca.
  bool require_client_cert = false;
  absl::Duration reload_interval = absl::Seconds(60);

  bool tls() const { return !files.cert.empty() || !files.key.empty(); }
};

// A dialled channel. Plaintext when files.ca is empty and cert/key are too.
struct ChannelSecurity {
  // files.ca verifies the server (required for TLS); files.cert/key are this
  // end's identity for mutual TLS (optional, both or neither).
  TlsFiles files;
  // The name the server's certificate must carry when it differs from the
  // dialled host (e.g. dialling an IP); empty: the target's host.
  std::string server_name;
  absl::Duration reload_interval = absl::Seconds(60);

  bool tls() const { return !files.ca.empty() || !files.cert.empty() || !files.key.empty(); }
};

// Insecure credentials when !security.tls(); otherwise TLS ones.
// INVALID_ARGUMENT naming `flag_prefix`-flags and the file for an incomplete
// set of files, an unreadable or unparsable file, a key that does not match
// its certificate, or an expired certificate. `flag_prefix` is how the flags
// are spelled for messages ("--tls", "--worker-tls").
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& flag_prefix);
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurity& security, const std::string& flag_prefix);

// The channel arguments `security` needs (the server-name override).
void AddChannelArguments(const ChannelSecurity& security, grpc::ChannelArguments* args);

// True for loopback hosts ("127.0.0.1", "::1", "[::1]", "localhost", any 127/8).
bool IsLoopbackHost(const std::string& host);

// A short description for logs: "plaintext", "TLS", "mutual TLS".
std::string Describe(const ServerSecurity& security);
std::string Describe(const ChannelSecurity& security);

}  // namespace strata::net
