//! In-process fakes of the two APIs that restart applications, written from their docs and
//! served over HTTPS with a test CA:
//!
//! - the Kubernetes API server's `PATCH /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}`
//!   (kubernetes.io API reference, "Update API Objects in Place Using kubectl patch"): a bearer
//!   token, `Content-Type: application/strategic-merge-patch+json` (anything else is 415), a
//!   `Status` body with `message` on errors; a changed pod template starts a rollout, the same
//!   template again does not;
//! - Azure Resource Manager's Container Apps GET and `revisions/{name}/restart` (api-version
//!   2025-01-01) and App Service `sites/{name}/restart` (api-version 2024-04-01): a bearer token,
//!   the api-version query parameter, an `{"error":{"code","message"}}` body on errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::patch;
use serde_json::{Value, json};

use crate::azure::fake::net::TlsListener;
use crate::support::tls::localhost_certificates;

/// One workload the fake cluster holds: its pod template annotations and how many rollouts
/// a template change started.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    pub annotations: BTreeMap<String, String>,
    pub rollouts: u32,
}

#[derive(Default)]
struct Cluster {
    token: String,
    /// (resource, namespace, name) -> workload.
    workloads: BTreeMap<(String, String, String), Workload>,
    requests: Vec<(String, String)>,
}

/// A fake Kubernetes API server.
#[derive(Clone)]
pub struct FakeKube {
    cluster: Arc<Mutex<Cluster>>,
    pub url: String,
    pub ca_pem: String,
}

impl FakeKube {
    pub async fn start(token: &str) -> FakeKube {
        let (ca, cert, key) = localhost_certificates("fake Kubernetes CA");
        let listener = TlsListener::bind(&cert, &key).await;
        let url = format!("https://localhost:{}", listener.addr.port());
        let cluster = Arc::new(Mutex::new(Cluster { token: token.to_owned(), ..Cluster::default() }));
        let app = axum::Router::new()
            .route("/apis/apps/v1/namespaces/{ns}/{resource}/{name}", patch(kube_patch))
            .with_state(cluster.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        FakeKube { cluster, url, ca_pem: ca }
    }

    pub fn add(&self, resource: &str, namespace: &str, name: &str) {
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        self.cluster.lock().expect("cluster").workloads.insert(key, Workload::default());
    }

    pub fn workload(&self, resource: &str, namespace: &str, name: &str) -> Workload {
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        self.cluster.lock().expect("cluster").workloads.get(&key).cloned().expect("workload")
    }

    /// Each request as (content type, body).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.cluster.lock().expect("cluster").requests.clone()
    }
}

/// A JSON body with its content type (axum's `Json` needs a feature this crate leaves off).
fn json_body(value: Value) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()});
    (code, json_body(body)).into_response()
}

async fn kube_patch(
    State(cluster): State<Arc<Mutex<Cluster>>>,
    Path((ns, resource, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut cluster = cluster.lock().expect("cluster");
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = String::from_utf8_lossy(&body).into_owned();
    cluster.requests.push((header("content-type"), text.clone()));
    if header("authorization") != format!("Bearer {}", cluster.token) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if header("content-type") != "application/strategic-merge-patch+json" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format",
        );
    }
    if !["deployments", "statefulsets"].contains(&resource.as_str()) {
        return status(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource");
    }
    let Some(workload) = cluster.workloads.get_mut(&(resource.clone(), ns.clone(), name.clone())) else {
        return status(StatusCode::NOT_FOUND, "NotFound", &format!("{resource}.apps \"{name}\" not found"));
    };
    let Ok(patch) = serde_json::from_str::<Value>(&text) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON");
    };
    let Some(annotations) = patch["spec"]["template"]["metadata"]["annotations"].as_object() else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "the patch changes nothing the fake knows",
        );
    };
    let before = workload.annotations.clone();
    for (k, v) in annotations {
        workload.annotations.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
    }
    if workload.annotations != before {
        workload.rollouts += 1;
    }
    (StatusCode::OK, json_body(json!({"kind": "Deployment", "metadata": {"name": name, "namespace": ns}})))
        .into_response()
}

#[derive(Default)]
struct Arm {
    token: String,
    /// resource id (lower case) -> restarts.
    apps: BTreeMap<String, u32>,
    log: Vec<String>,
}

/// A fake Azure Resource Manager for Container Apps and App Service.
#[derive(Clone)]
pub struct FakeArm {
    arm: Arc<Mutex<Arm>>,
    pub url: String,
    pub ca_pem: String,
}

impl FakeArm {
    pub async fn start(token: &str) -> FakeArm {
        let (ca, cert, key) = localhost_certificates("fake ARM CA");
        let listener = TlsListener::bind(&cert, &key).await;
        let url = format!("https://localhost:{}", listener.addr.port());
        let arm = Arc::new(Mutex::new(Arm { token: token.to_owned(), ..Arm::default() }));
        let app = axum::Router::new().fallback(arm_call).with_state(arm.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        FakeArm { arm, url, ca_pem: ca }
    }

    pub fn add(&self, id: &str) {
        self.arm.lock().expect("arm").apps.insert(id.to_ascii_lowercase(), 0);
    }

    pub fn restarts(&self, id: &str) -> u32 {
        self.arm.lock().expect("arm").apps[&id.to_ascii_lowercase()]
    }

    /// Each request as `METHOD path?query`.
    pub fn log(&self) -> Vec<String> {
        self.arm.lock().expect("arm").log.clone()
    }
}

fn arm_error(code: StatusCode, error: &str, message: &str) -> Response {
    (code, json_body(json!({"error": {"code": error, "message": message}}))).into_response()
}

async fn arm_call(
    State(arm): State<Arc<Mutex<Arm>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut arm = arm.lock().expect("arm");
    arm.log.push(format!("{method} {uri}"));
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth != format!("Bearer {}", arm.token) {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        );
    }
    let path = uri.path().to_ascii_lowercase();
    let (id, action) = match path.split_once("/revisions/") {
        Some((id, rest)) => (id.to_owned(), format!("revisions/{rest}")),
        None => match path.strip_suffix("/restart") {
            Some(id) => (id.to_owned(), "restart".to_owned()),
            None => (path.clone(), String::new()),
        },
    };
    let container_app = id.contains("/providers/microsoft.app/containerapps/");
    let version = if container_app { "2025-01-01" } else { "2024-04-01" };
    if query.get("api-version").map(String::as_str) != Some(version) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            "The api-version is invalid.",
        );
    }
    if !body.is_empty() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The restart actions take no body.",
        );
    }
    let name = id.rsplit('/').next().unwrap_or_default().to_owned();
    let Some(count) = arm.apps.get_mut(&id) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource '{id}' was not found."),
        );
    };
    match (method.as_str(), action.as_str(), container_app) {
        ("GET", "", true) => json_body(json!({"id": id, "name": name, "properties": {"latestReadyRevisionName": format!("{name}--rev1")}})).into_response(),
        ("POST", a, true) if a == format!("revisions/{name}--rev1/restart") => {
            *count += 1;
            StatusCode::OK.into_response()
        }
        ("POST", "restart", false) => {
            *count += 1;
            StatusCode::OK.into_response()
        }
        _ => arm_error(StatusCode::NOT_FOUND, "NotFound", "No such operation."),
    }
}
