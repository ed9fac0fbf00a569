//! A sentence-transformers checkpoint as a graph: builds the BERT encoder as an ONNX
//! `ModelProto` (opset 17) from its named tensors, so safetensors input takes the same road
//! through tract as an ONNX export (`onnx::read_graph`). The graph is the model itself —
//! embeddings, attention with the mask, erf GELU, LayerNorm — not just a weight container;
//! `bench/export_onnx.py` writes the same graph with the `onnx` package.

use std::collections::BTreeMap;

use anyhow::Result;
use snapembed::engine::snapshot::BertConfig;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

use crate::source::Array;

#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
}

fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f, ..Default::default() }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: ints.to_vec(), ..Default::default() }
}

impl Builder {
    fn f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.inits.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        });
        name.into()
    }

    fn i64(&mut self, name: &str, data: &[i64]) -> String {
        self.inits.push(TensorProto {
            name: name.into(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name.into()
    }

    fn node(&mut self, op: &str, inputs: &[&str], out: &str, attribute: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            name: out.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            attribute,
            ..Default::default()
        });
        out.into()
    }

    /// `x · Wᵀ + b` from a torch `[out, in]` weight: MatMul with `[in, out]`, Add of the named bias.
    fn linear(&mut self, t: &BTreeMap<String, Array>, x: &str, module: &str, out: &str) -> Result<String> {
        let w = tensor(t, &format!("{module}.weight"))?.transposed();
        let wt = self.f32(&format!("{module}.weight_t"), &w.shape, &w.data);
        let b = tensor(t, &format!("{module}.bias"))?;
        let b = self.f32(&format!("{module}.bias"), &b.shape, &b.data);
        let mm = self.node("MatMul", &[x, &wt], &format!("{out}_mm"), vec![]);
        Ok(self.node("Add", &[&mm, &b], out, vec![]))
    }

    fn layer_norm(&mut self, t: &BTreeMap<String, Array>, x: &str, module: &str, out: &str, eps: f32) -> Result<String> {
        let g = tensor(t, &format!("{module}.weight"))?;
        let g = self.f32(&format!("{module}.weight"), &g.shape, &g.data);
        let b = tensor(t, &format!("{module}.bias"))?;
        let b = self.f32(&format!("{module}.bias"), &b.shape, &b.data);
        Ok(self.node("LayerNormalization", &[x, &g, &b], out, vec![attr_i("axis", -1), attr_f("epsilon", eps)]))
    }
}

fn tensor<'a>(t: &'a BTreeMap<String, Array>, name: &str) -> Result<&'a Array> {
    t.get(name).ok_or_else(|| anyhow::anyhow!("the checkpoint has no tensor {name}"))
}

fn io(name: &str, elem: DataType, dims: &[&str]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(n) => dimension::Value::DimValue(n),
                Err(_) => dimension::Value::DimParam(d.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The BERT encoder graph (`input_ids`, `attention_mask`, `token_type_ids` → `last_hidden_state`).
pub fn bert_graph(c: &BertConfig, t: &BTreeMap<String, Array>) -> Result<ModelProto> {
    let mut g = Builder::default();
    let (h, heads) = (c.hidden_size as i64, c.num_attention_heads as i64);
    let eps = c.layer_norm_eps;
    let shape = g.node("Shape", &["input_ids"], "ids_shape", vec![]);
    let one = g.i64("one", &[1]);
    let seq = g.node("Gather", &[&shape, &one], "seq_len", vec![attr_i("axis", 0)]);
    let word = tensor(t, "embeddings.word_embeddings.weight")?;
    let word = g.f32("embeddings.word_embeddings.weight", &word.shape, &word.data);
    let pos = tensor(t, "embeddings.position_embeddings.weight")?;
    let pos = g.f32("embeddings.position_embeddings.weight", &pos.shape, &pos.data);
    let typ = tensor(t, "embeddings.token_type_embeddings.weight")?;
    let typ = g.f32("embeddings.token_type_embeddings.weight", &typ.shape, &typ.data);
    let zero = g.i64("zero", &[0]);
    let pos = g.node("Slice", &[&pos, &zero, &seq, &zero], "pos_emb", vec![]);
    let we = g.node("Gather", &[&word, "input_ids"], "word_emb", vec![]);
    let te = g.node("Gather", &[&typ, "token_type_ids"], "type_emb", vec![]);
    let x = g.node("Add", &[&we, &te], "emb_sum0", vec![]);
    let x = g.node("Add", &[&x, &pos], "emb_sum", vec![]);
    let mut x = g.layer_norm(t, &x, "embeddings.LayerNorm", "emb_out", eps)?;
    let axes = g.i64("axes12", &[1, 2]);
    let mask = g.node("Unsqueeze", &["attention_mask", &axes], "mask4", vec![]);
    let mask = g.node("Cast", &[&mask], "mask4f", vec![attr_i("to", DataType::Float as i64)]);
    let one_f = g.f32("one_f", &[], &[1.0]);
    let neg = g.f32("neg", &[], &[f32::MIN]);
    let inv = g.node("Sub", &[&one_f, &mask], "inv_mask", vec![]);
    let bias = g.node("Mul", &[&inv, &neg], "mask_bias", vec![]);
    let split = g.i64("heads_shape", &[0, 0, heads, h / heads]);
    let merged = g.i64("merged_shape", &[0, 0, h]);
    let scale = g.f32("scale", &[], &[1.0 / ((h / heads) as f32).sqrt()]);
    let half = g.f32("half", &[], &[0.5]);
    let rsqrt2 = g.f32("rsqrt2", &[], &[std::f32::consts::FRAC_1_SQRT_2]);
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let heads_of = |g: &mut Builder, x: &str, name: &str, perm: &[i64]| -> Result<String> {
            let y = g.linear(t, x, &format!("{p}.attention.self.{name}"), &format!("l{l}_{name}"))?;
            let r = g.node("Reshape", &[&y, &split], &format!("l{l}_{name}_r"), vec![]);
            Ok(g.node("Transpose", &[&r], &format!("l{l}_{name}_t"), vec![attr_ints("perm", perm)]))
        };
        let q = heads_of(&mut g, &x, "query", &[0, 2, 1, 3])?;
        let k = heads_of(&mut g, &x, "key", &[0, 2, 3, 1])?;
        let v = heads_of(&mut g, &x, "value", &[0, 2, 1, 3])?;
        let s = g.node("MatMul", &[&q, &k], &format!("l{l}_qk"), vec![]);
        let s = g.node("Mul", &[&s, &scale], &format!("l{l}_qks"), vec![]);
        let s = g.node("Add", &[&s, &bias], &format!("l{l}_scores"), vec![]);
        let a = g.node("Softmax", &[&s], &format!("l{l}_probs"), vec![attr_i("axis", -1)]);
        let ctx = g.node("MatMul", &[&a, &v], &format!("l{l}_ctx"), vec![]);
        let ctx = g.node("Transpose", &[&ctx], &format!("l{l}_ctx_t"), vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let ctx = g.node("Reshape", &[&ctx, &merged], &format!("l{l}_ctx_m"), vec![]);
        let ao = g.linear(t, &ctx, &format!("{p}.attention.output.dense"), &format!("l{l}_ao"))?;
        let res = g.node("Add", &[&ao, &x], &format!("l{l}_ares"), vec![]);
        x = g.layer_norm(t, &res, &format!("{p}.attention.output.LayerNorm"), &format!("l{l}_attn_out"), eps)?;
        let inter = g.linear(t, &x, &format!("{p}.intermediate.dense"), &format!("l{l}_inter"))?;
        let gs = g.node("Mul", &[&inter, &rsqrt2], &format!("l{l}_gs"), vec![]);
        let erf = g.node("Erf", &[&gs], &format!("l{l}_erf"), vec![]);
        let g1 = g.node("Add", &[&erf, &one_f], &format!("l{l}_g1"), vec![]);
        let gh = g.node("Mul", &[&inter, &half], &format!("l{l}_gh"), vec![]);
        let gelu = g.node("Mul", &[&gh, &g1], &format!("l{l}_gelu"), vec![]);
        let out = g.linear(t, &gelu, &format!("{p}.output.dense"), &format!("l{l}_out"))?;
        let res = g.node("Add", &[&out, &x], &format!("l{l}_ores"), vec![]);
        let name = if l + 1 == c.num_hidden_layers { "last_hidden_state".to_owned() } else { format!("l{l}_ffn_out") };
        x = g.layer_norm(t, &res, &format!("{p}.output.LayerNorm"), &name, eps)?;
    }
    let inputs = ["input_ids", "attention_mask", "token_type_ids"].map(|n| io(n, DataType::Int64, &["batch", "sequence"]));
    let hidden = h.to_string();
    let graph = GraphProto {
        name: "bert".into(),
        node: g.nodes,
        initializer: g.inits,
        input: inputs.to_vec(),
        output: vec![io("last_hidden_state", DataType::Float, &["batch", "sequence", &hidden])],
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        producer_name: "model-prep".into(),
        graph: Some(graph),
        ..Default::default()
    })
}
