// HfCheckpoint: a Hugging Face model directory (config.json + one or more
// safetensors shards). Declared in safetensors_file.h.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/format/byte_reader.h"
#include "common/format/safetensors_file.h"
#include "common/status_macros.h"

namespace strata {

namespace {

namespace fs = std::filesystem;

constexpr char kConfigFile[] = "config.json";
constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";
// config.json and the index are small text files; a bigger one is not what
// we think it is, and reading it whole would only waste memory.
constexpr uintmax_t kMaxJsonFileBytes = 64ull << 20;

bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

absl::StatusOr<std::string> ReadSmallFile(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return absl::NotFoundError(absl::StrCat(p.string(), ": not found"));
  if (!fs::is_regular_file(p, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(p.string(), ": not a regular file"));
  }
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(p.string(), ": cannot stat: ", ec.message()));
  if (size > kMaxJsonFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(p.string(), ": ", size, " bytes, larger than the ", kMaxJsonFileBytes, " byte limit"));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(p.string(), ": cannot open for reading"));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(p.string(), ": read error"));
  return out.str();
}

absl::StatusOr<nlohmann::json> ParseJson(const std::string& text, const fs::path& p) {
  // nlohmann throws on malformed input; keep it local.
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(p.string(), ": not valid JSON: ", e.what()));
  }
}

// A shard name from the index must stay inside the checkpoint directory.
bool IsSafeShardName(const std::string& name) {
  if (name.empty()) return false;
  const fs::path p(name);
  if (p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HfCheckpoint>> HfCheckpoint::Open(const std::string& dir) {
  auto ckpt = std::unique_ptr<HfCheckpoint>(new HfCheckpoint());
  ckpt->dir_ = dir;
  const fs::path root(dir);
  {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      return absl::NotFoundError(absl::StrCat(dir, ": not a directory (expected a Hugging Face checkpoint)"));
    }
  }
  ASSIGN_OR_RETURN(ckpt->config_json_, ReadSmallFile(root / kConfigFile));

  // Shard file name -> (shard, tensor names the index assigns to it).
  std::vector<std::string> shard_names;
  std::vector<std::vector<std::string>> expected;
  const fs::path index_path = root / kIndexFile;
  if (IsRegularFile(index_path)) {
    ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(index_path));
    ASSIGN_OR_RETURN(const nlohmann::json index, ParseJson(text, index_path));
    auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
    if (!index.is_object() || weight_map == index.end() || !weight_map->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path.string(), ": missing \"weight_map\" object"));
    }
    if (weight_map->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": \"weight_map\" is empty"));
    }
    absl::flat_hash_map<std::string, size_t> shard_of_name;
    for (auto it = weight_map->begin(); it != weight_map->end(); ++it) {
      if (!it.value().is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": weight_map entry '", it.key(),
                                                       "' is not a file name string"));
      }
      const std::string shard = it.value().get<std::string>();
      if (!IsSafeShardName(shard)) {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": weight_map entry '", it.key(),
                                                       "' names shard '", shard,
                                                       "', which is outside the checkpoint directory"));
      }
      auto [slot, inserted] = shard_of_name.emplace(shard, shard_names.size());
      if (inserted) {
        shard_names.push_back(shard);
        expected.emplace_back();
      }
      expected[slot->second].push_back(it.key());
    }
  } else if (IsRegularFile(root / kSingleFile)) {
    shard_names.push_back(kSingleFile);
    expected.emplace_back();
  } else {
    return absl::NotFoundError(absl::StrCat(dir, ": neither ", kIndexFile, " nor ", kSingleFile, " found"));
  }

  // Each distinct shard is mapped once, however many tensors name it.
  absl::flat_hash_map<std::string, size_t> owner;  // tensor name -> shard
  for (size_t s = 0; s < shard_names.size(); ++s) {
    const std::string path = (root / shard_names[s]).string();
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> shard = SafetensorsFile::Open(path);
    if (!shard.ok()) {
      return absl::Status(shard.status().code(),
                          absl::StrCat("checkpoint ", dir, ": shard ", shard_names[s], ": ",
                                       shard.status().message()));
    }
    for (const std::string& name : expected[s]) {
      if ((*shard)->FindTensor(name) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": tensor '", name,
                                                       "' is mapped to ", shard_names[s],
                                                       ", which does not contain it"));
      }
    }
    for (const SafetensorsTensor& t : (*shard)->tensors()) {
      auto [it, inserted] = owner.emplace(t.name, s);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("checkpoint ", dir, ": tensor '", t.name,
                                                       "' appears in both ", shard_names[it->second],
                                                       " and ", shard_names[s]));
      }
      ckpt->index_.emplace(t.name, &t);
    }
    ckpt->shards_.push_back(*std::move(shard));
  }
  return ckpt;
}

const SafetensorsTensor* HfCheckpoint::FindTensor(std::string_view name) const {
  auto it = index_.find(AbslView(name));
  return it == index_.end() ? nullptr : it->second;
}

std::vector<const SafetensorsTensor*> HfCheckpoint::tensors() const {
  std::vector<const SafetensorsTensor*> out;
  for (const auto& shard : shards_) {
    for (const SafetensorsTensor& t : shard->tensors()) out.push_back(&t);
  }
  return out;
}

}  // namespace strata
