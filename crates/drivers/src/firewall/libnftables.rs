//! libnftables, the library behind `nft`, loaded at run time from the nftables package: a
//! transaction then costs no process start (about 3 ms per `nft` run on these machines).
//! A context's netlink socket belongs to the namespace of the thread that made it: the
//! daemon's own is made once and used behind a lock (a context is not thread-safe); work in
//! a sandbox's namespace gets a context of its own, made on a thread inside it.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

/// `NFT_CTX_OUTPUT_JSON`: JSON in and out.
const OUTPUT_JSON: c_uint = 1 << 4;
const LIBRARY: &str = "libnftables.so.1";

struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_output: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    get_error: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    set_flags: unsafe extern "C" fn(*mut c_void, c_uint),
    run_cmd: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    // Keeps the functions above valid.
    _library: libloading::Library,
}

/// A context, in the namespace of the thread that made it.
struct Context {
    api: &'static Api,
    ctx: *mut c_void,
}

// SAFETY: the daemon's context is only ever used under the mutex below, one thread at a time.
unsafe impl Send for Context {}

static API: OnceLock<Option<Api>> = OnceLock::new();
static DAEMON_CONTEXT: OnceLock<Option<Mutex<Context>>> = OnceLock::new();

fn load() -> Result<Api, libloading::Error> {
    // SAFETY: libnftables' documented C API (libnftables.h), with these signatures.
    unsafe {
        let library = libloading::Library::new(LIBRARY)?;
        Ok(Api {
            ctx_new: *library.get(b"nft_ctx_new\0")?,
            ctx_free: *library.get(b"nft_ctx_free\0")?,
            buffer_output: *library.get(b"nft_ctx_buffer_output\0")?,
            buffer_error: *library.get(b"nft_ctx_buffer_error\0")?,
            get_output: *library.get(b"nft_ctx_get_output_buffer\0")?,
            get_error: *library.get(b"nft_ctx_get_error_buffer\0")?,
            set_flags: *library.get(b"nft_ctx_output_set_flags\0")?,
            run_cmd: *library.get(b"nft_run_cmd_from_buffer\0")?,
            _library: library,
        })
    }
}

fn api() -> Option<&'static Api> {
    API.get_or_init(|| match load() {
        Ok(api) => Some(api),
        Err(e) => {
            tracing::info!(error = %e, "libnftables not loaded; running the nft binary instead");
            None
        }
    })
    .as_ref()
}

impl Context {
    fn new(api: &'static Api) -> Option<Self> {
        // SAFETY: a fresh context, with nft's output and errors kept in buffers.
        unsafe {
            let ctx = (api.ctx_new)(0);
            if ctx.is_null() {
                return None;
            }
            (api.buffer_output)(ctx);
            (api.buffer_error)(ctx);
            Some(Self { api, ctx })
        }
    }

    fn run(&self, commands: &str, json: bool) -> Result<String, String> {
        let input =
            CString::new(commands).map_err(|_| "nft input contains a NUL byte".to_string())?;
        let api = self.api;
        // SAFETY: `ctx` is valid until drop; the buffers are read before the next call.
        unsafe {
            (api.set_flags)(self.ctx, if json { OUTPUT_JSON } else { 0 });
            let status = (api.run_cmd)(self.ctx, input.as_ptr());
            let output = text((api.get_output)(self.ctx));
            let error = text((api.get_error)(self.ctx));
            if status == 0 {
                Ok(output)
            } else {
                Err(error.trim().to_string())
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: made by nft_ctx_new, freed once.
        unsafe { (self.api.ctx_free)(self.ctx) }
    }
}

/// Runs `commands` (nft's JSON with `json`, else its text syntax) as one transaction in the
/// daemon's namespace and returns what nft printed, or its error message; `None` when the
/// library is not there.
pub fn run(commands: &str, json: bool) -> Option<Result<String, String>> {
    let context = DAEMON_CONTEXT
        .get_or_init(|| Context::new(api()?).map(Mutex::new))
        .as_ref()?;
    let context = context
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(context.run(commands, json))
}

/// As [`run`], in the namespace of the calling thread, with a context made for the purpose.
pub fn run_here(commands: &str) -> Option<Result<String, String>> {
    Some(Context::new(api()?)?.run(commands, false))
}

fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: libnftables returns a NUL-terminated buffer it owns.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}
