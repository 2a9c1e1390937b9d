//! WebUSB for the Sony readers: asks the browser for an RC-S380 or RC-S300, opens it, claims
//! its vendor-specific interface (the CCID class interface is blocked by WebUSB) and exposes
//! the interface's bulk endpoints as a [`UsbBulk`], so the `uketsuke-card` framings run on it.
//!
//! Every bulk IN transfer is raced against a timer (WebUSB's `transferIn` has no timeout of its
//! own). A transfer that loses the race stays pending in the browser — WebUSB cannot cancel
//! one short of releasing the interface — so it is kept and awaited by the next read: a late
//! answer is not lost, and the next read does not receive the answer meant for an earlier one.
//!
//! Errors of `open()` / `claimInterface()` are mapped by [`CardError::from_open_rejection`]:
//! `SecurityError` there means the operating system holds the reader, unlike the same name
//! from `requestDevice`, where it means the page is not allowed to ask (https).

use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::Poll;

use js_sys::{Promise, Reflect, Uint8Array};
use uketsuke_card::{TransportError, UsbBulk};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    UsbDevice, UsbDeviceFilter, UsbDeviceRequestOptions, UsbDirection, UsbEndpointType,
    UsbInTransferResult, UsbOutTransferResult, UsbTransferStatus,
};

use crate::card::{CardError, ReaderKind};

/// Interface class of vendor-specific interfaces.
const VENDOR_SPECIFIC_CLASS: u8 = 0xFF;
/// Bytes asked for per bulk IN transfer: more than any answer of either reader (a 256-byte
/// RF frame plus framing); the reader ends the transfer early with a short packet.
const MAX_IN_TRANSFER: u32 = 2048;
/// How long a bulk OUT transfer may take before the reader counts as gone.
const WRITE_TIMEOUT_MS: u32 = 1_000;

/// The bulk endpoints of a claimed reader interface.
pub struct WebUsbBulk {
    device: UsbDevice,
    interface_number: u8,
    endpoint_in: u8,
    endpoint_out: u8,
    /// A bulk IN transfer that outlived its timeout (see the module comment).
    pending_in: Option<JsFuture<UsbInTransferResult>>,
}

/// An opened reader: what it is and its endpoints.
pub struct WebUsbReader {
    pub kind: ReaderKind,
    pub bulk: WebUsbBulk,
}

/// Shows the browser's device chooser filtered to the supported readers and opens the choice.
pub async fn request_reader() -> Result<WebUsbReader, CardError> {
    let window = web_sys::window().ok_or(CardError::WebUsbUnavailable)?;
    let navigator = window.navigator();
    if !Reflect::has(&navigator, &"usb".into()).unwrap_or(false) {
        return Err(CardError::WebUsbUnavailable);
    }
    let filters: Vec<UsbDeviceFilter> = ReaderKind::usb_filters()
        .into_iter()
        .map(|(vendor, product)| {
            let filter = UsbDeviceFilter::new();
            filter.set_vendor_id(vendor);
            filter.set_product_id(product);
            filter
        })
        .collect();
    let options = UsbDeviceRequestOptions::new(&filters);
    let device = JsFuture::from(navigator.usb().request_device(&options))
        .await
        .map_err(|e| match error_name(&e).as_str() {
            // NotFoundError: the chooser was closed without a choice.
            "NotFoundError" => CardError::NoReaderChosen,
            "SecurityError" => CardError::AccessDenied,
            _ => CardError::Reader(describe(&e)),
        })?;
    open_reader(device).await
}

/// Opens a device the page already holds (from the chooser, `getDevices`, or a test double).
pub async fn open_reader(device: UsbDevice) -> Result<WebUsbReader, CardError> {
    let kind = ReaderKind::from_ids(device.vendor_id(), device.product_id())
        .ok_or(CardError::ReaderNotSupported)?;
    let bulk = WebUsbBulk::open(device).await?;
    Ok(WebUsbReader { kind, bulk })
}

impl WebUsbBulk {
    /// Opens the device, selects its configuration and claims the vendor-specific interface.
    pub async fn open(device: UsbDevice) -> Result<Self, CardError> {
        if !device.opened() {
            await_js(device.open()).await.map_err(busy_or_reader)?;
        }
        if device.configuration().is_none() {
            let value = device
                .configurations()
                .get(0)
                .dyn_ref::<web_sys::UsbConfiguration>()
                .map(|c| c.configuration_value())
                .unwrap_or(1);
            await_js(device.select_configuration(value))
                .await
                .map_err(busy_or_reader)?;
        }
        let (interface_number, endpoint_in, endpoint_out) =
            find_vendor_bulk_interface(&device).ok_or(CardError::ReaderNotSupported)?;
        await_js(device.claim_interface(interface_number))
            .await
            .map_err(busy_or_reader)?;
        Ok(Self {
            device,
            interface_number,
            endpoint_in,
            endpoint_out,
            pending_in: None,
        })
    }

    /// Releases the interface and closes the device (best effort: it may be unplugged).
    pub async fn close(self) {
        let _ = await_js(self.device.release_interface(self.interface_number)).await;
        let _ = await_js(self.device.close()).await;
    }
}

/// The first vendor-specific interface with a bulk IN and a bulk OUT endpoint:
/// (interface number, IN endpoint, OUT endpoint).
fn find_vendor_bulk_interface(device: &UsbDevice) -> Option<(u8, u8, u8)> {
    let configuration = device.configuration()?;
    configuration.interfaces().iter().find_map(|interface| {
        let alternate = interface.alternate();
        if alternate.interface_class() != VENDOR_SPECIFIC_CLASS {
            return None;
        }
        let bulk = |direction: UsbDirection| {
            alternate.endpoints().iter().find_map(|endpoint| {
                (endpoint.type_() == UsbEndpointType::Bulk && endpoint.direction() == direction)
                    .then(|| endpoint.endpoint_number())
            })
        };
        Some((
            interface.interface_number(),
            bulk(UsbDirection::In)?,
            bulk(UsbDirection::Out)?,
        ))
    })
}

impl UsbBulk for WebUsbBulk {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let promise = self
            .device
            .transfer_out_with_u8_slice(self.endpoint_out, data)
            .map_err(|e| TransportError::Io(describe(&e)))?;
        let mut transfer = JsFuture::from(promise);
        let result: UsbOutTransferResult = race(&mut transfer, WRITE_TIMEOUT_MS)
            .await?
            .ok_or(TransportError::Timeout)?
            .map_err(usb_error)?;
        if result.status() != UsbTransferStatus::Ok {
            return Err(TransportError::Io(format!(
                "bulk OUT status {:?}",
                result.status()
            )));
        }
        Ok(())
    }

    /// A drain read: `None` when nothing came within `timeout_ms`. Caveat: the losing
    /// `transferIn` stays pending (see the module comment) and is awaited by the next read, so
    /// leftover data that arrives after the drain's quiet window is delivered to that read; the
    /// framings skip such stale frames (RC-S380: result frames before the ACK; RC-S300: answers
    /// with another sequence number).
    async fn read_if_any(&mut self, timeout_ms: u32) -> Result<Option<Vec<u8>>, TransportError> {
        match self.read(timeout_ms).await {
            Ok(data) => Ok(Some(data)),
            Err(TransportError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let mut transfer = match self.pending_in.take() {
            Some(transfer) => transfer,
            None => JsFuture::from(self.device.transfer_in(self.endpoint_in, MAX_IN_TRANSFER)),
        };
        let Some(outcome) = race(&mut transfer, timeout_ms).await? else {
            self.pending_in = Some(transfer);
            return Err(TransportError::Timeout);
        };
        let result = outcome.map_err(usb_error)?;
        if result.status() != UsbTransferStatus::Ok {
            return Err(TransportError::Io(format!(
                "bulk IN status {:?}",
                result.status()
            )));
        }
        let view = result
            .data()
            .ok_or_else(|| TransportError::Io("bulk IN without data".to_owned()))?;
        let bytes = Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            u32::try_from(view.byte_offset()).unwrap_or(u32::MAX),
            u32::try_from(view.byte_length()).unwrap_or(0),
        );
        Ok(bytes.to_vec())
    }
}

/// Waits for `transfer` or `timeout_ms`, whichever comes first: `None` when the timer won.
/// The transfer is borrowed, so the caller can keep it when it lost.
async fn race<F: Future + Unpin>(
    transfer: &mut F,
    timeout_ms: u32,
) -> Result<Option<F::Output>, TransportError> {
    let mut timer = sleep(timeout_ms)?;
    Ok(poll_fn(|cx| {
        if let Poll::Ready(output) = Pin::new(&mut *transfer).poll(cx) {
            return Poll::Ready(Some(output));
        }
        if Pin::new(&mut timer).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await)
}

/// A future that resolves after `ms` milliseconds (window.setTimeout).
fn sleep(ms: u32) -> Result<JsFuture, TransportError> {
    let window = web_sys::window()
        .ok_or_else(|| TransportError::Io("no window for the transfer timer".to_owned()))?;
    let mut scheduled = Ok(0);
    let promise = Promise::new(&mut |resolve, _reject| {
        scheduled = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            &resolve,
            i32::try_from(ms).unwrap_or(i32::MAX),
        );
    });
    scheduled.map_err(|e| TransportError::Io(describe(&e)))?;
    Ok(JsFuture::from(promise))
}

/// Awaits a WebUSB promise that resolves to nothing useful.
async fn await_js<T: wasm_bindgen::convert::FromWasmAbi + 'static>(
    promise: Promise<T>,
) -> Result<(), JsValue> {
    JsFuture::from(promise).await.map(|_| ())
}

/// A rejected transfer: the device was unplugged (NotFoundError) or the transfer failed.
fn usb_error(e: JsValue) -> TransportError {
    match error_name(&e).as_str() {
        "NotFoundError" => TransportError::Io("the reader was disconnected".to_owned()),
        _ => TransportError::Io(describe(&e)),
    }
}

/// A rejected `open()` / `selectConfiguration()` / `claimInterface()`: `SecurityError`
/// ("Access denied") is the operating system holding the reader, `NetworkError` /
/// `InvalidStateError` another program or tab (see [`CardError::from_open_rejection`]).
fn busy_or_reader(e: JsValue) -> CardError {
    CardError::from_open_rejection(&error_name(&e), &describe(&e))
}

/// The `name` of a DOMException (empty for other values).
fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|name| name.as_string())
        .unwrap_or_default()
}

fn describe(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}
