#include "common/net/transport_security.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace strata::net {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;

absl::StatusOr<BioPtr> Open(const std::string& flag, const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read the file"));
  }
  return bio;
}

std::string AsnTime(const ASN1_TIME* t) {
  BioPtr mem(BIO_new(BIO_s_mem()));
  if (!mem || ASN1_TIME_print(mem.get(), t) != 1) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(mem.get(), &data);
  return std::string(data, static_cast<size_t>(std::max(n, 0L)));
}

// The first certificate of a PEM file, checked to be valid now.
absl::StatusOr<X509Ptr> ReadCertificate(const std::string& flag, const std::string& path) {
  ASSIGN_OR_RETURN(BioPtr bio, Open(flag, path));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": not a PEM certificate"));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": the certificate expired on ",
                                                   AsnTime(X509_get0_notAfter(cert.get()))));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": the certificate is not valid before ",
                                                   AsnTime(X509_get0_notBefore(cert.get()))));
  }
  return cert;
}

absl::Status CheckKeyPair(const std::string& prefix, const TlsFiles& files) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(prefix + "-cert", files.cert));
  ASSIGN_OR_RETURN(BioPtr bio, Open(prefix + "-key", files.key));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "-key ", files.key, ": not a PEM private key (or it is encrypted)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(prefix, "-key ", files.key,
                                                   ": does not match the certificate in ", files.cert));
  }
  return absl::OkStatus();
}

// A CA bundle: at least one certificate; expired ones are reported since
// nothing they signed verifies any more.
absl::Status CheckCaBundle(const std::string& flag, const std::string& path) {
  return ReadCertificate(flag, path).status();
}

unsigned int RefreshSeconds(absl::Duration d) {
  return static_cast<unsigned int>(std::clamp<int64_t>(absl::ToInt64Seconds(d), 1, 86400));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& prefix) {
  if (!security.tls()) {
    if (security.require_client_cert || !security.files.ca.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "-cert and ", prefix, "-key are needed to verify client certificates"));
    }
    return grpc::InsecureServerCredentials();
  }
  if (security.files.cert.empty() || security.files.key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "-cert and ", prefix, "-key go together"));
  }
  RETURN_IF_ERROR(CheckKeyPair(prefix, security.files));
  const bool mutual = security.require_client_cert;
  if (mutual && security.files.ca.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mutual TLS needs a CA to verify client certificates (", prefix, "-ca)"));
  }
  if (!security.files.ca.empty()) RETURN_IF_ERROR(CheckCaBundle(prefix + "-ca", security.files.ca));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      security.files.key, security.files.cert, mutual ? security.files.ca : std::string(),
      RefreshSeconds(security.reload_interval));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurity& security, const std::string& prefix) {
  if (!security.tls()) return grpc::InsecureChannelCredentials();
  if (security.files.ca.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "-ca is needed to verify the server's certificate"));
  }
  RETURN_IF_ERROR(CheckCaBundle(prefix + "-ca", security.files.ca));
  const bool identity = !security.files.cert.empty() || !security.files.key.empty();
  if (identity) {
    if (security.files.cert.empty() || security.files.key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "-cert and ", prefix, "-key go together"));
    }
    RETURN_IF_ERROR(CheckKeyPair(prefix, security.files));
  }
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      identity ? security.files.key : std::string(), identity ? security.files.cert : std::string(),
      security.files.ca, RefreshSeconds(security.reload_interval));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (identity) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

void AddChannelArguments(const ChannelSecurity& security, grpc::ChannelArguments* args) {
  if (security.tls() && !security.server_name.empty()) {
    args->SetSslTargetNameOverride(security.server_name);
  }
}

bool IsLoopbackHost(const std::string& raw) {
  std::string host = absl::AsciiStrToLower(raw);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1" || host == "ip6-localhost") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (const std::string& p : parts) {
    int v = 0;
    if (!absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

std::string Describe(const ServerSecurity& security) {
  if (!security.tls()) return "plaintext";
  return security.require_client_cert ? "mutual TLS" : "TLS";
}

std::string Describe(const ChannelSecurity& security) {
  if (!security.tls()) return "plaintext";
  return security.files.cert.empty() ? "TLS" : "mutual TLS";
}

}  // namespace strata::net
