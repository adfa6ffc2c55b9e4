//! The kernel boundary of the uhid transport: opening /dev/uhid for tokio, and its messages
//! (include/uapi/linux/uhid.h) encoded and decoded as bytes. The daemon's one `unsafe` is here.
//!
//! Every read or write of /dev/uhid is one `struct uhid_event`: a `__u32 type`, then a union of
//! packed per-type structs, in the machine's own byte order. Reading and writing the few fields we
//! use at their offsets needs no `unsafe` and no `#[repr(C)]` mirror of the union: the offsets are
//! the ABI, and the tests below pin every one of them.
//!
//! The kernel zero-fills whatever a write leaves out (`memset` of its input buffer, then a copy of
//! `min(count, sizeof(struct uhid_event))` bytes), so writes carry only the bytes that matter.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Opens `path` (/dev/uhid) non-blocking and registers it with the tokio reactor for reads.
/// uhid writes never block, so only readability is watched. Needs a tokio runtime with I/O.
pub fn open_nonblocking(path: &Path) -> io::Result<AsyncFd<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    // SAFETY: `register_with_interest` requires the fd to stay open and to be the same for the
    // whole life of the AsyncFd. The File owns it and moves into the AsyncFd, which closes it
    // only when dropped; a File's as_raw_fd() never changes.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) };
    registered.map_err(|err| err.into_parts().1)
}

/// UHID_DATA_MAX and HID_MAX_DESCRIPTOR_SIZE.
const DATA_MAX: usize = 4096;

/// `struct uhid_create2_req`: name[128] phys[64] uniq[64] rd_size:u16 bus:u16 vendor:u32
/// product:u32 version:u32 country:u32 rd_data[4096]; the largest member of the union.
const CREATE2_SIZE: usize = 128 + 64 + 64 + 2 + 2 + 4 * 4 + DATA_MAX;

/// `sizeof(struct uhid_event)`: the union is padded to the alignment of the one unpacked member,
/// `struct uhid_start_req { __u64 dev_flags; }`, so 4380 bytes on x86-64 and arm64 (4376 where a
/// u64 is 4-aligned, as on i386). A read returns `min(count, sizeof)` bytes of one event.
pub const EVENT_SIZE: usize = 4 + CREATE2_SIZE.next_multiple_of(std::mem::align_of::<u64>());

/// Where the union starts, after the `type` field.
const BODY: usize = 4;

// enum uhid_event_type (the legacy numbers 0, 7, 8 are not used).
const UHID_DESTROY: u32 = 1;
const UHID_START: u32 = 2;
const UHID_STOP: u32 = 3;
const UHID_OPEN: u32 = 4;
const UHID_CLOSE: u32 = 5;
const UHID_OUTPUT: u32 = 6;
const UHID_GET_REPORT: u32 = 9;
const UHID_GET_REPORT_REPLY: u32 = 10;
const UHID_CREATE2: u32 = 11;
const UHID_INPUT2: u32 = 12;
const UHID_SET_REPORT: u32 = 13;
const UHID_SET_REPORT_REPLY: u32 = 14;

// enum uhid_report_type
const UHID_OUTPUT_REPORT: u8 = 1;

/// BUS_USB from linux/input.h: browsers look for FIDO keys among USB HID devices.
pub const BUS_USB: u16 = 0x03;

/// The errno a GET_REPORT or SET_REPORT reply carries: a FIDO key has no feature reports.
const EIO: u16 = 5;

/// The device that UHID_CREATE2 brings up.
pub struct DeviceSpec<'a> {
    /// HID_NAME; C string, at most 127 bytes.
    pub name: &'a str,
    /// HID_PHYS; at most 63 bytes.
    pub phys: &'a str,
    /// HID_UNIQ (the serial number); at most 63 bytes, printable ASCII.
    pub uniq: &'a str,
    pub bus: u16,
    pub vendor: u32,
    pub product: u32,
    pub version: u32,
    /// At most 4096 bytes.
    pub report_descriptor: &'a [u8],
}

/// An event read from /dev/uhid.
#[derive(Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// A HID driver bound the device (its hidraw node follows).
    Start,
    /// The driver let go of the device.
    Stop,
    /// The first process opened the device (e.g. its hidraw node).
    Open,
    /// The last process closed it.
    Close,
    /// An output report the host wrote, exactly as the kernel hands it over: with the leading
    /// report-ID byte (0 for a device without numbered reports).
    Output(Vec<u8>),
    /// An output event of another report type (feature), which no FIDO host sends.
    OtherOutput { rtype: u8 },
    /// A GET_REPORT request; it must be answered with a reply carrying the same `id`.
    GetReport { id: u32 },
    /// A SET_REPORT request; likewise.
    SetReport { id: u32 },
    /// A type this daemon does not know (newer kernels may add some).
    Unknown(u32),
}

fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_ne_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
}

/// Copies `value` into a fixed-size C string field, keeping at least one terminating NUL.
fn put_c_string(buf: &mut [u8], at: usize, field_len: usize, value: &str) {
    let bytes = value.as_bytes();
    let len = bytes.len().min(field_len - 1);
    buf[at..at + len].copy_from_slice(&bytes[..len]);
}

fn get_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// UHID_CREATE2. Panics on a report descriptor over 4096 bytes (ours is a constant of 34).
pub fn create2(spec: &DeviceSpec<'_>) -> Vec<u8> {
    let descriptor_len = spec.report_descriptor.len();
    assert!(descriptor_len <= DATA_MAX, "report descriptor too long");
    const RD_DATA: usize = BODY + 276;
    let mut event = vec![0u8; RD_DATA + descriptor_len];
    put_u32(&mut event, 0, UHID_CREATE2);
    put_c_string(&mut event, BODY, 128, spec.name);
    put_c_string(&mut event, BODY + 128, 64, spec.phys);
    put_c_string(&mut event, BODY + 192, 64, spec.uniq);
    put_u16(&mut event, BODY + 256, descriptor_len as u16);
    put_u16(&mut event, BODY + 258, spec.bus);
    put_u32(&mut event, BODY + 260, spec.vendor);
    put_u32(&mut event, BODY + 264, spec.product);
    put_u32(&mut event, BODY + 268, spec.version);
    // BODY + 272: country code 0 (not localised).
    event[RD_DATA..].copy_from_slice(spec.report_descriptor);
    event
}

/// UHID_DESTROY: removes the device (closing the fd does the same).
pub fn destroy() -> Vec<u8> {
    UHID_DESTROY.to_ne_bytes().to_vec()
}

/// UHID_INPUT2: one input report to the host (`size: u16`, then the data).
pub fn input2(report: &[u8]) -> Vec<u8> {
    assert!(report.len() <= DATA_MAX, "input report too long");
    let mut event = vec![0u8; BODY + 2 + report.len()];
    put_u32(&mut event, 0, UHID_INPUT2);
    put_u16(&mut event, BODY, report.len() as u16);
    event[BODY + 2..].copy_from_slice(report);
    event
}

/// The EIO answer to GET_REPORT `id` (`id: u32, err: u16, size: u16`, no data).
pub fn get_report_refusal(id: u32) -> Vec<u8> {
    let mut event = vec![0u8; BODY + 8];
    put_u32(&mut event, 0, UHID_GET_REPORT_REPLY);
    put_u32(&mut event, BODY, id);
    put_u16(&mut event, BODY + 4, EIO);
    event
}

/// The EIO answer to SET_REPORT `id` (`id: u32, err: u16`).
pub fn set_report_refusal(id: u32) -> Vec<u8> {
    let mut event = vec![0u8; BODY + 6];
    put_u32(&mut event, 0, UHID_SET_REPORT_REPLY);
    put_u32(&mut event, BODY, id);
    put_u16(&mut event, BODY + 4, EIO);
    event
}

/// Decodes one event as read; `None` if it is shorter than its type requires.
pub fn parse(bytes: &[u8]) -> Option<KernelEvent> {
    Some(match get_u32(bytes, 0)? {
        UHID_START => KernelEvent::Start,
        UHID_STOP => KernelEvent::Stop,
        UHID_OPEN => KernelEvent::Open,
        UHID_CLOSE => KernelEvent::Close,
        UHID_OUTPUT => {
            // struct uhid_output_req { data[4096]; size: u16; rtype: u8 }
            let size = usize::from(get_u16(bytes, BODY + DATA_MAX)?).min(DATA_MAX);
            let rtype = *bytes.get(BODY + DATA_MAX + 2)?;
            if rtype != UHID_OUTPUT_REPORT {
                return Some(KernelEvent::OtherOutput { rtype });
            }
            KernelEvent::Output(bytes.get(BODY..BODY + size)?.to_vec())
        }
        // struct uhid_get_report_req / uhid_set_report_req both start with `id: u32`.
        UHID_GET_REPORT => KernelEvent::GetReport {
            id: get_u32(bytes, BODY)?,
        },
        UHID_SET_REPORT => KernelEvent::SetReport {
            id: get_u32(bytes, BODY)?,
        },
        other => KernelEvent::Unknown(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(descriptor: &[u8]) -> DeviceSpec<'_> {
        DeviceSpec {
            name: "name",
            phys: "phys",
            uniq: "uniq",
            bus: BUS_USB,
            vendor: 0x1209,
            product: 0x0001,
            version: 0x0102,
            report_descriptor: descriptor,
        }
    }

    fn event_with_type(kind: u32) -> Vec<u8> {
        let mut event = vec![0u8; EVENT_SIZE];
        put_u32(&mut event, 0, kind);
        event
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn event_size_is_the_kernels_sizeof_on_64_bit() {
        // sizeof(struct uhid_event) with gcc on x86-64: 4 + 4376 (4372 padded to 8).
        assert_eq!(EVENT_SIZE, 4380);
    }

    #[test]
    fn create2_places_every_field_at_its_abi_offset() {
        let descriptor = [0x06, 0xd0, 0xf1, 0x09, 0x01];
        let event = create2(&spec(&descriptor));
        // offsetof(struct uhid_event, u.create2.<field>)
        assert_eq!(get_u32(&event, 0), Some(11), "type UHID_CREATE2");
        assert_eq!(&event[4..9], b"name\0");
        assert_eq!(&event[132..137], b"phys\0");
        assert_eq!(&event[196..201], b"uniq\0");
        assert_eq!(get_u16(&event, 260), Some(5), "rd_size");
        assert_eq!(get_u16(&event, 262), Some(3), "bus");
        assert_eq!(get_u32(&event, 264), Some(0x1209), "vendor");
        assert_eq!(get_u32(&event, 268), Some(0x0001), "product");
        assert_eq!(get_u32(&event, 272), Some(0x0102), "version");
        assert_eq!(get_u32(&event, 276), Some(0), "country");
        assert_eq!(&event[280..], &descriptor, "rd_data");
    }

    #[test]
    fn strings_too_long_for_their_field_keep_a_terminating_nul() {
        let name = "x".repeat(200);
        let uniq = "u".repeat(64);
        let event = create2(&DeviceSpec {
            name: &name,
            uniq: &uniq,
            ..spec(&[])
        });
        assert!(event[4..4 + 127].iter().all(|&b| b == b'x'));
        assert_eq!(event[4 + 127], 0, "name[127]");
        assert!(event[196..196 + 63].iter().all(|&b| b == b'u'));
        assert_eq!(event[196 + 63], 0, "uniq[63]");
    }

    #[test]
    fn input2_is_type_size_then_the_report() {
        let event = input2(&[0xab; 64]);
        assert_eq!(event.len(), 4 + 2 + 64);
        assert_eq!(get_u32(&event, 0), Some(12));
        assert_eq!(get_u16(&event, 4), Some(64));
        assert!(event[6..].iter().all(|&b| b == 0xab));
    }

    #[test]
    fn report_refusals_echo_the_request_id_with_eio() {
        let get = get_report_refusal(0xdead_beef);
        assert_eq!(get.len(), 12);
        assert_eq!(get_u32(&get, 0), Some(10), "UHID_GET_REPORT_REPLY");
        assert_eq!(get_u32(&get, 4), Some(0xdead_beef));
        assert_eq!(get_u16(&get, 8), Some(5), "err EIO");
        assert_eq!(get_u16(&get, 10), Some(0), "size");

        let set = set_report_refusal(7);
        assert_eq!(set.len(), 10);
        assert_eq!(get_u32(&set, 0), Some(14), "UHID_SET_REPORT_REPLY");
        assert_eq!(get_u32(&set, 4), Some(7));
        assert_eq!(get_u16(&set, 8), Some(5));
    }

    #[test]
    fn output_events_give_their_data_with_the_report_id_byte() {
        let mut event = event_with_type(UHID_OUTPUT);
        event[4] = 0; // report ID
        event[5..9].copy_from_slice(&[0xff; 4]);
        put_u16(&mut event, 4100, 65);
        event[4102] = UHID_OUTPUT_REPORT;
        let Some(KernelEvent::Output(data)) = parse(&event) else {
            panic!("not an output event: {:?}", parse(&event));
        };
        assert_eq!(data.len(), 65);
        assert_eq!(&data[..5], &[0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn feature_output_events_are_told_apart() {
        let mut event = event_with_type(UHID_OUTPUT);
        put_u16(&mut event, 4100, 8);
        event[4102] = 0; // UHID_FEATURE_REPORT
        assert_eq!(parse(&event), Some(KernelEvent::OtherOutput { rtype: 0 }));
    }

    #[test]
    fn an_oversized_output_length_is_clamped_to_the_data_field() {
        let mut event = event_with_type(UHID_OUTPUT);
        put_u16(&mut event, 4100, 0xffff);
        event[4102] = UHID_OUTPUT_REPORT;
        let Some(KernelEvent::Output(data)) = parse(&event) else {
            panic!("not an output event");
        };
        assert_eq!(data.len(), DATA_MAX);
    }

    #[test]
    fn short_events_are_rejected_not_misread() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[6, 0]), None);
        assert_eq!(parse(&event_with_type(UHID_OUTPUT)[..100]), None);
        assert_eq!(parse(&event_with_type(UHID_GET_REPORT)[..6]), None);
    }

    #[test]
    fn simple_and_report_request_events_decode() {
        let ty = |t: u32| t.to_ne_bytes();
        assert_eq!(parse(&ty(2)), Some(KernelEvent::Start));
        assert_eq!(parse(&ty(3)), Some(KernelEvent::Stop));
        assert_eq!(parse(&ty(4)), Some(KernelEvent::Open));
        assert_eq!(parse(&ty(5)), Some(KernelEvent::Close));
        assert_eq!(parse(&ty(99)), Some(KernelEvent::Unknown(99)));
        let mut get = event_with_type(UHID_GET_REPORT);
        put_u32(&mut get, 4, 42);
        assert_eq!(parse(&get), Some(KernelEvent::GetReport { id: 42 }));
        let mut set = event_with_type(UHID_SET_REPORT);
        put_u32(&mut set, 4, 43);
        assert_eq!(parse(&set), Some(KernelEvent::SetReport { id: 43 }));
    }

    #[test]
    fn destroy_is_just_its_type() {
        assert_eq!(destroy(), 1u32.to_ne_bytes());
    }
}
