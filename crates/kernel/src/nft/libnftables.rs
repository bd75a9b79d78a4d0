//! libnftables, the library behind `nft`, loaded at run time from the nftables package: a
//! transaction then costs no process start (about 3 ms per `nft` run on these machines).
//! One context, behind a lock (a context is not thread-safe); its netlink socket belongs to
//! the namespace of the thread that made it, the daemon's. It is made early, while the
//! daemon's descriptors are few: libnftables waits on its socket with select(), which cannot
//! take a descriptor above 1023.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

/// `NFT_CTX_OUTPUT_JSON`: JSON in and out.
const OUTPUT_JSON: c_uint = 1 << 4;
const LIBRARY: &str = "libnftables.so.1";

struct Api {
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    get_output: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    get_error: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    set_flags: unsafe extern "C" fn(*mut c_void, c_uint),
    run_cmd: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    // Keeps the functions above valid.
    _library: libloading::Library,
}

struct Context {
    api: Api,
    ctx: *mut c_void,
}

// SAFETY: the context is only ever used under the mutex below, one thread at a time.
unsafe impl Send for Context {}

static CONTEXT: OnceLock<Option<Mutex<Context>>> = OnceLock::new();

fn load() -> Result<Context, libloading::Error> {
    // SAFETY: libnftables' documented C API (libnftables.h), with these signatures.
    unsafe {
        let library = libloading::Library::new(LIBRARY)?;
        let api = Api {
            ctx_new: *library.get(b"nft_ctx_new\0")?,
            buffer_output: *library.get(b"nft_ctx_buffer_output\0")?,
            buffer_error: *library.get(b"nft_ctx_buffer_error\0")?,
            get_output: *library.get(b"nft_ctx_get_output_buffer\0")?,
            get_error: *library.get(b"nft_ctx_get_error_buffer\0")?,
            set_flags: *library.get(b"nft_ctx_output_set_flags\0")?,
            run_cmd: *library.get(b"nft_run_cmd_from_buffer\0")?,
            _library: library,
        };
        let ctx = (api.ctx_new)(0);
        if ctx.is_null() {
            return Err(libloading::Error::DlOpenUnknown);
        }
        (api.buffer_output)(ctx);
        (api.buffer_error)(ctx);
        Ok(Context { api, ctx })
    }
}

/// Runs `commands` (nft's JSON with `json`, else its text syntax) as one transaction and
/// returns what nft printed, or its error message; `None` when the library is not there.
pub fn run(commands: &str, json: bool) -> Option<Result<String, String>> {
    let context = CONTEXT
        .get_or_init(|| match load() {
            Ok(context) => Some(Mutex::new(context)),
            Err(e) => {
                tracing::info!(error = %e, "libnftables not loaded; running the nft binary instead");
                None
            }
        })
        .as_ref()?;
    let context = context
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let input = match CString::new(commands) {
        Ok(input) => input,
        Err(_) => return Some(Err("nft input contains a NUL byte".into())),
    };
    let api = &context.api;
    // SAFETY: `ctx` is valid for the process's life; the buffers are read before the next
    // call, under the lock.
    unsafe {
        (api.set_flags)(context.ctx, if json { OUTPUT_JSON } else { 0 });
        let status = (api.run_cmd)(context.ctx, input.as_ptr());
        let output = text((api.get_output)(context.ctx));
        let error = text((api.get_error)(context.ctx));
        Some(if status == 0 {
            Ok(output)
        } else {
            Err(error.trim().to_string())
        })
    }
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
