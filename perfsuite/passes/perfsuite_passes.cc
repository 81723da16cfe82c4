// perfsuite's own custom graph pass library, for testing "apply a user's pass library".
//
// Two passes, registered with REGISTER_PASS from MXNet's lib_api.h:
//
//   perfsuite_identity_rewrite  (correct)   every FullyConnected node with a bias becomes
//                                           FullyConnected(no_bias=True) followed by
//                                           broadcast_add(<fc output>, <bias>): one more node
//                                           per rewritten FC, the same mathematics.
//   perfsuite_drop_bias         (WRONG, on purpose)  the same rewrite without the broadcast_add:
//                                           the bias is silently dropped. A parity checker
//                                           must catch it.
//
// Option (optimize_for keyword argument, as a string):
//   fc_name_contains=<text>   rewrite only FullyConnected nodes whose name contains <text>
//                             (e.g. "ffn" for BERT's feed-forward layers); default: all of them.
// Any other option is rejected (MX_FAIL), so a misspelt option cannot silently do nothing.
//
// The rewritten bias variable gets a "__shape__" attribute "(num_hidden,)": after the
// rewrite nothing else pins its shape, and shape inference from the data shapes alone
// (Gluon's SymbolBlock does that) would otherwise leave it unknown.
//
// Supported lib_api versions (MX_LIBRARY_VERSION of the lib_api.h compiled against):
//   7   (MXNet 1.7.x)  pass signature on JSON strings; lib_api.h is header-only.
//   10  (MXNet 1.8.x)  pass signature on mxnet::ext::Graph*, same code as 11; needs src/lib_api.cc
//                      of the same release compiled in. The 1.8.0 wheels do not ship it, so this
//                      path is only compile-checked (1.8's and 1.9's lib_api.h differ in the
//                      stateful-op classes and registration macro names, not in the Graph API).
//   11  (MXNet 1.9.x)  as 10; the 1.9 wheels ship src/lib_api.cc.
// Written for perfsuite from scratch; it uses only the public lib_api.h interface.

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mxnet/lib_api.h"

#ifndef MX_LIBRARY_VERSION
#error "mxnet/lib_api.h defines no MX_LIBRARY_VERSION: this MXNet has no custom-library API"
#endif
#if MX_LIBRARY_VERSION < 7
#error "perfsuite_passes needs MX_LIBRARY_VERSION >= 7 (MXNet >= 1.7.0): REGISTER_PASS does not exist before"
#endif
#if MX_LIBRARY_VERSION > 7 && MX_LIBRARY_VERSION < 10
#error "perfsuite_passes supports lib_api versions 7 (MXNet 1.7) and 10/11 (MXNet 1.8/1.9), not intermediate nightly versions"
#endif

#if MX_LIBRARY_VERSION >= 10
using mxnet::ext::Graph;
using mxnet::ext::MXReturnValue;
using mxnet::ext::MX_FAIL;
using mxnet::ext::MX_SUCCESS;
using mxnet::ext::Node;
using mxnet::ext::NodeEntry;
#define PERFSUITE_ERR MX_ERROR_MSG
#else
#define PERFSUITE_ERR std::cerr
#endif

namespace {

const char kOptionFilter[] = "fc_name_contains";
const char kAddSuffix[] = "_perfsuite_bias_add";

bool IsTrue(const std::string& s) {
  return s == "True" || s == "true" || s == "1";
}

// Reads the options; false (with a message) on an unknown option.
bool ParseOptions(const std::unordered_map<std::string, std::string>& options,
                  const char* pass_name, std::string* name_filter) {
  name_filter->clear();
  for (const auto& kv : options) {
    if (kv.first == kOptionFilter) {
      *name_filter = kv.second;
    } else {
      PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': unknown option '" << kv.first
                    << "'; allowed: " << kOptionFilter << std::endl;
      return false;
    }
  }
  return true;
}

// Whether a node (given by op, name, attributes, input count) is a FullyConnected with a bias
// that the pass should rewrite.
bool WantsRewrite(const std::string& op, const std::string& name,
                  const std::unordered_map<std::string, std::string>& attrs, size_t num_inputs,
                  const std::string& name_filter) {
  if (op != "FullyConnected") return false;
  auto it = attrs.find("no_bias");
  if (it != attrs.end() && IsTrue(it->second)) return false;
  if (num_inputs != 3) return false;  // data, weight, bias
  if (!name_filter.empty() && name.find(name_filter) == std::string::npos) return false;
  return true;
}

std::string BiasShape(const std::unordered_map<std::string, std::string>& fc_attrs) {
  auto it = fc_attrs.find("num_hidden");
  if (it == fc_attrs.end()) return "";
  return "(" + it->second + ",)";
}

#if MX_LIBRARY_VERSION >= 10
// ------------------------------------------------------------------------------------------
// lib_api 10/11 (MXNet 1.8/1.9): rewrite the mxnet::ext::Graph in place.
// Node::outputs must stay consistent with Node::inputs: Graph::toString() orders the nodes
// by a DFS over the outputs edges.
// ------------------------------------------------------------------------------------------

void EraseOutputEdge(Node* producer, Node* consumer, int input_index) {
  auto& outs = producer->outputs;
  outs.erase(std::remove_if(outs.begin(), outs.end(),
                            [&](const NodeEntry& e) {
                              return e.node == consumer && e.entry == input_index;
                            }),
             outs.end());
}

MXReturnValue RewriteGraph(Graph* graph, const std::unordered_map<std::string, std::string>& options,
                           bool keep_bias, const char* pass_name) {
  std::string name_filter;
  if (!ParseOptions(options, pass_name, &name_filter)) return MX_FAIL;
  const size_t original_size = graph->size();  // addNode appends: do not visit new nodes
  for (size_t i = 0; i < original_size; ++i) {
    Node* fc = graph->getNode(i);
    if (!WantsRewrite(fc->op, fc->name, fc->attrs, fc->inputs.size(), name_filter)) continue;

    NodeEntry bias = fc->inputs[2];
    fc->inputs.pop_back();
    fc->attrs["no_bias"] = "True";
    EraseOutputEdge(bias.node, fc, 2);
    if (bias.node->op == "null" && bias.node->attrs.count("__shape__") == 0) {
      std::string shape = BiasShape(fc->attrs);
      if (!shape.empty()) bias.node->attrs["__shape__"] = shape;
    }
    if (!keep_bias) continue;  // perfsuite_drop_bias: the bias is gone (deliberately wrong)

    Node* add = graph->addNode(fc->name + kAddSuffix, "broadcast_add");
    for (const char* key : {"__ext_shape__", "__ext_dtype__", "__profiler_scope__"}) {
      auto it = fc->attrs.find(key);  // same output shape and dtype as the FC
      if (it != fc->attrs.end()) add->attrs[key] = it->second;
    }
    // Move every consumer of the FC's output to the add node.
    std::vector<NodeEntry> consumers = fc->outputs;
    fc->outputs.clear();
    for (const NodeEntry& c : consumers) {
      NodeEntry& in = c.node->inputs[c.entry];
      if (in.node == fc) in.node = add;  // FullyConnected has one output, entry stays 0
      add->outputs.push_back(c);
    }
    for (NodeEntry& head : graph->outputs) {
      if (head.node == fc) head.node = add;
    }
    add->inputs.push_back({fc, 0});
    add->inputs.push_back(bias);
    fc->outputs.push_back({add, 0});
    bias.node->outputs.push_back({add, 1});
  }
  return MX_SUCCESS;
}

MXReturnValue IdentityRewrite(Graph* graph, const std::unordered_map<std::string, std::string>& options) {
  return RewriteGraph(graph, options, true, "perfsuite_identity_rewrite");
}

MXReturnValue DropBias(Graph* graph, const std::unordered_map<std::string, std::string>& options) {
  return RewriteGraph(graph, options, false, "perfsuite_drop_bias");
}

#else
// ------------------------------------------------------------------------------------------
// lib_api 7 (MXNet 1.7): the pass receives the graph as a JSON string and returns a new one.
// lib_api.h 7's own JsonParser cannot be used: it ends a string at the first '"' even when
// escaped, which breaks on Gluon exports (attributes like "__init__": "[\"uniform\", ...]").
// So a minimal JSON reader/writer follows that keeps strings, numbers and literals verbatim
// (escapes included), which makes parse + dump an exact round trip of the content.
// ------------------------------------------------------------------------------------------

struct Json {
  enum Type { kNone, kString, kRaw, kArray, kObject } type = kNone;
  std::string text;                                   // kString (escaped, no quotes) or kRaw
  std::vector<Json> items;                            // kArray
  std::vector<std::pair<std::string, Json>> members;  // kObject, in input order

  static Json String(const std::string& s) { Json j; j.type = kString; j.text = s; return j; }
  static Json Int(long v) { Json j; j.type = kRaw; j.text = std::to_string(v); return j; }
  static Json Array() { Json j; j.type = kArray; return j; }
  static Json Object() { Json j; j.type = kObject; return j; }

  Json* Find(const std::string& key) {
    for (auto& m : members) if (m.first == key) return &m.second;
    return nullptr;
  }
  Json& Set(const std::string& key, Json value) {
    Json* found = Find(key);
    if (found) { *found = std::move(value); return *found; }
    members.emplace_back(key, std::move(value));
    return members.back().second;
  }
  long AsInt() const {
    try { return std::stol(text); } catch (...) { return -1; }
  }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& s) : s_(s) {}
  bool Read(Json* out) {
    if (!Value(out)) return false;
    Space();
    return pos_ == s_.size();
  }

 private:
  void Space() { while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_; }
  bool Str(std::string* out) {
    if (pos_ >= s_.size() || s_[pos_] != '"') return false;
    for (++pos_; pos_ < s_.size(); ++pos_) {
      char c = s_[pos_];
      if (c == '"') { ++pos_; return true; }
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return false;
        *out += c;
        c = s_[++pos_];
      }
      *out += c;
    }
    return false;
  }
  bool Value(Json* out) {
    Space();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '"') { out->type = Json::kString; return Str(&out->text); }
    if (c == '[') {
      out->type = Json::kArray;
      ++pos_; Space();
      if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return true; }
      while (true) {
        out->items.emplace_back();
        if (!Value(&out->items.back())) return false;
        Space();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ',') { ++pos_; continue; }
        if (s_[pos_] == ']') { ++pos_; return true; }
        return false;
      }
    }
    if (c == '{') {
      out->type = Json::kObject;
      ++pos_; Space();
      if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return true; }
      while (true) {
        Space();
        std::string key;
        if (!Str(&key)) return false;
        Space();
        if (pos_ >= s_.size() || s_[pos_] != ':') return false;
        ++pos_;
        out->members.emplace_back(key, Json());
        if (!Value(&out->members.back().second)) return false;
        Space();
        if (pos_ >= s_.size()) return false;
        if (s_[pos_] == ',') { ++pos_; continue; }
        if (s_[pos_] == '}') { ++pos_; return true; }
        return false;
      }
    }
    // number, true, false, null: kept verbatim
    size_t start = pos_;
    while (pos_ < s_.size() && std::string(",]} \t\r\n").find(s_[pos_]) == std::string::npos) ++pos_;
    if (pos_ == start) return false;
    out->type = Json::kRaw;
    out->text = s_.substr(start, pos_ - start);
    return true;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

void WriteJson(const Json& j, std::string* out) {
  switch (j.type) {
    case Json::kString: *out += '"'; *out += j.text; *out += '"'; break;
    case Json::kRaw: *out += j.text; break;
    case Json::kArray:
      *out += '[';
      for (size_t i = 0; i < j.items.size(); ++i) {
        if (i) *out += ',';
        WriteJson(j.items[i], out);
      }
      *out += ']';
      break;
    case Json::kObject:
      *out += '{';
      for (size_t i = 0; i < j.members.size(); ++i) {
        if (i) *out += ',';
        *out += '"'; *out += j.members[i].first; *out += "\":";
        WriteJson(j.members[i].second, out);
      }
      *out += '}';
      break;
    default: *out += "null"; break;
  }
}

std::string StrOf(Json& node, const std::string& key) {
  Json* v = node.Find(key);
  return (v && v->type == Json::kString) ? v->text : std::string();
}

std::unordered_map<std::string, std::string> AttrsOf(Json& node) {
  std::unordered_map<std::string, std::string> attrs;
  Json* a = node.Find("attrs");
  if (a && a->type == Json::kObject)
    for (auto& m : a->members) attrs[m.first] = m.second.text;
  return attrs;
}

Json& AttrsMap(Json& node) {
  Json* a = node.Find("attrs");
  if (a && a->type == Json::kObject) return *a;
  return node.Set("attrs", Json::Object());
}

Json Entry(long node, long index) {
  Json e = Json::Array();
  e.items.push_back(Json::Int(node));
  e.items.push_back(Json::Int(index));
  e.items.push_back(Json::Int(0));
  return e;
}

MXReturnValue RewriteJson(const std::string& in_graph, const std::string** out_graph,
                          const std::unordered_map<std::string, std::string>& options,
                          bool keep_bias, const char* pass_name) {
  std::string name_filter;
  if (!ParseOptions(options, pass_name, &name_filter)) return MX_FAIL;
  Json graph;
  JsonReader reader(in_graph);
  Json* nodes_json = nullptr;
  Json* heads = nullptr;
  if (!reader.Read(&graph) || graph.type != Json::kObject ||
      !(nodes_json = graph.Find("nodes")) || nodes_json->type != Json::kArray ||
      !(heads = graph.Find("heads")) || heads->type != Json::kArray) {
    PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': input is not a graph JSON" << std::endl;
    return MX_FAIL;
  }
  std::vector<Json>& nodes = nodes_json->items;
  std::vector<long> new_index(nodes.size(), -1);  // old node -> new node
  std::vector<long> redirect(nodes.size(), -1);   // old FC -> new broadcast_add replacing output 0
  Json out_nodes = Json::Array();

  auto remap = [&](Json& entry) -> bool {
    if (entry.type != Json::kArray || entry.items.size() < 2) return false;
    long old_node = entry.items[0].AsInt(), index = entry.items[1].AsInt();
    if (old_node < 0 || static_cast<size_t>(old_node) >= nodes.size() || new_index[old_node] < 0) return false;
    long target = (redirect[old_node] >= 0 && index == 0) ? redirect[old_node] : new_index[old_node];
    entry.items[0] = Json::Int(target);
    return true;
  };

  for (size_t i = 0; i < nodes.size(); ++i) {
    Json node = nodes[i];
    Json* inputs = node.Find("inputs");
    if (!inputs || inputs->type != Json::kArray) inputs = &node.Set("inputs", Json::Array());
    for (Json& in : inputs->items) {
      if (!remap(in)) {
        PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': node " << i
                      << " has an input that is not an earlier node" << std::endl;
        return MX_FAIL;
      }
    }
    const std::string op = StrOf(node, "op");
    const std::string name = StrOf(node, "name");
    std::unordered_map<std::string, std::string> attrs = AttrsOf(node);
    const bool rewrite = WantsRewrite(op, name, attrs, inputs->items.size(), name_filter);
    Json bias;
    if (rewrite) {
      bias = inputs->items[2];
      inputs->items.pop_back();
      AttrsMap(node).Set("no_bias", Json::String("True"));
      Json& bias_node = out_nodes.items[bias.items[0].AsInt()];
      std::string shape = BiasShape(attrs);
      if (StrOf(bias_node, "op") == "null" && !shape.empty()) {
        Json& bias_attrs = AttrsMap(bias_node);
        if (!bias_attrs.Find("__shape__")) bias_attrs.Set("__shape__", Json::String(shape));
      }
    }
    new_index[i] = static_cast<long>(out_nodes.items.size());
    out_nodes.items.push_back(node);
    if (rewrite && keep_bias) {
      Json add = Json::Object();
      add.Set("op", Json::String("broadcast_add"));
      add.Set("name", Json::String(name + kAddSuffix));
      Json& add_inputs = add.Set("inputs", Json::Array());
      add_inputs.items.push_back(Entry(new_index[i], 0));
      add_inputs.items.push_back(bias);
      Json add_attrs = Json::Object();
      for (const char* key : {"__ext_shape__", "__ext_dtype__", "__profiler_scope__"}) {
        auto it = attrs.find(key);
        if (it != attrs.end()) add_attrs.Set(key, Json::String(it->second));
      }
      if (!add_attrs.members.empty()) add.Set("attrs", add_attrs);
      redirect[i] = static_cast<long>(out_nodes.items.size());
      out_nodes.items.push_back(add);
    }
  }

  for (Json& head : heads->items) {
    if (!remap(head)) {
      PERFSUITE_ERR << "perfsuite pass '" << pass_name << "': a graph head is not a node" << std::endl;
      return MX_FAIL;
    }
  }
  Json arg_nodes = Json::Array();
  for (size_t i = 0; i < out_nodes.items.size(); ++i)
    if (StrOf(out_nodes.items[i], "op") == "null") arg_nodes.items.push_back(Json::Int(static_cast<long>(i)));
  graph.Set("arg_nodes", arg_nodes);
  if (graph.Find("node_row_ptr")) {
    // Row pointers into the outputs of all nodes; only their count changes with one output
    // per inserted node. MXNet does not read them back; keep them well-formed anyway.
    Json row_ptr = Json::Array();
    for (size_t i = 0; i <= out_nodes.items.size(); ++i) row_ptr.items.push_back(Json::Int(static_cast<long>(i)));
    graph.Set("node_row_ptr", row_ptr);
  }
  graph.Set("nodes", out_nodes);
  std::string* text = new std::string();  // lib_api 7 deletes *out_graph
  WriteJson(graph, text);
  *out_graph = text;
  return MX_SUCCESS;
}

MXReturnValue IdentityRewrite(const std::string& in_graph, const std::string** out_graph,
                              const std::unordered_map<std::string, std::string>& options,
                              const std::unordered_map<std::string, MXTensor>& /*args*/,
                              const std::unordered_map<std::string, MXTensor>& /*aux*/,
                              const PassResource& /*res*/) {
  return RewriteJson(in_graph, out_graph, options, true, "perfsuite_identity_rewrite");
}

MXReturnValue DropBias(const std::string& in_graph, const std::string** out_graph,
                       const std::unordered_map<std::string, std::string>& options,
                       const std::unordered_map<std::string, MXTensor>& /*args*/,
                       const std::unordered_map<std::string, MXTensor>& /*aux*/,
                       const PassResource& /*res*/) {
  return RewriteJson(in_graph, out_graph, options, false, "perfsuite_drop_bias");
}
#endif

}  // namespace

REGISTER_PASS(perfsuite_identity_rewrite).setBody(IdentityRewrite);
REGISTER_PASS(perfsuite_drop_bias).setBody(DropBias);

// Called by MXNet's MXLoadLib with MXNET_VERSION = major*10000 + minor*100 + patch.
MXReturnValue initialize(int version) {
  if (version >= 10700) return MX_SUCCESS;
  PERFSUITE_ERR << "perfsuite_passes needs MXNet >= 1.7.0 (got version code " << version << ")" << std::endl;
  return MX_FAIL;
}
