// Metrics over HTTP on 127.0.0.1 (port from the OS): /metrics open by
// default; with a Basic auth check, 401 without or with wrong credentials and
// 200 when the check accepts the (user, password) it is given. Plain sockets,
// every read bounded by SO_RCVTIMEO.
#include "coordinator/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"

namespace strata::coordinator {
namespace {

// The whole response to GET /metrics (with `authorization` when not empty).
std::string Get(int port, const std::string& authorization = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n";
    if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
    req += "\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

std::string Basic(const std::string& user, const std::string& password) {
  return "Basic " + absl::Base64Escape(user + ":" + password);
}

TEST(MetricsTest, OpenByDefault) {
  auto metrics = Metrics::Create("127.0.0.1:0");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  const std::string r = Get((*metrics)->port());
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200")) << r.substr(0, 200);
  EXPECT_TRUE(absl::StrContains(r, "strata_draining")) << r.substr(0, 200);
}

TEST(MetricsTest, BasicAuthDecidesEveryScrape) {
  absl::Mutex mu;
  std::string seen_user;
  auto metrics = Metrics::Create("127.0.0.1:0", [&](const std::string& user, const std::string& password) {
    absl::MutexLock lock(&mu);
    seen_user = user;
    return password == "sk-metrics-test-0123456";
  });
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const int port = (*metrics)->port();
  ASSERT_GT(port, 0);

  const std::string none = Get(port);
  EXPECT_TRUE(absl::StartsWith(none, "HTTP/1.1 401")) << none.substr(0, 200);
  EXPECT_TRUE(absl::StrContains(none, "WWW-Authenticate: Basic realm=\"strata metrics\"")) << none.substr(0, 300);
  EXPECT_FALSE(absl::StrContains(none, "strata_draining"));
  const std::string wrong = Get(port, Basic("prometheus", "sk-wrong-0000000000000"));
  EXPECT_TRUE(absl::StartsWith(wrong, "HTTP/1.1 401")) << wrong.substr(0, 200);
  const std::string bearer = Get(port, "Bearer sk-metrics-test-0123456");
  EXPECT_TRUE(absl::StartsWith(bearer, "HTTP/1.1 401")) << bearer.substr(0, 200);

  const std::string ok = Get(port, Basic("prometheus", "sk-metrics-test-0123456"));
  EXPECT_TRUE(absl::StartsWith(ok, "HTTP/1.1 200")) << ok.substr(0, 200);
  EXPECT_TRUE(absl::StrContains(ok, "strata_draining"));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen_user, "prometheus");
}

}  // namespace
}  // namespace strata::coordinator
