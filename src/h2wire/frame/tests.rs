use super::*;
use proptest::prelude::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    Head {
        len: payload.len() as u32,
        kind,
        flags,
        stream,
    }
    .write(&mut b);
    b.put_slice(payload);
    b.to_vec()
}

fn read(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let head = Head::parse(bytes).unwrap();
    assert_eq!(head.len as usize, bytes.len() - HEAD_LEN);
    parse(head, &bytes[HEAD_LEN..])
}

#[test]
fn a_head_round_trips_and_drops_the_reserved_bit() {
    let mut b = BytesMut::new();
    let h = Head {
        len: 0x12_3456,
        kind: kind::HEADERS,
        flags: 0x25,
        stream: 7,
    };
    h.write(&mut b);
    assert_eq!(Head::parse(&b), Some(h));
    b[5] |= 0x80;
    assert_eq!(Head::parse(&b).unwrap().stream, 7);
    assert_eq!(Head::parse(&b[..8]), None);
}

#[test]
fn data_is_unpadded_and_counts_its_padding() {
    let f = frame(
        kind::DATA,
        flag::PADDED | flag::END_STREAM,
        1,
        b"\x02abc\0\0",
    );
    assert_eq!(
        read(&f),
        Ok(Frame::Data {
            stream: 1,
            end_stream: true,
            data: b"abc",
            flow_len: 6
        })
    );
    let bad = frame(kind::DATA, flag::PADDED, 1, b"\x05abc");
    assert!(matches!(
        read(&bad),
        Err(FrameError::Connection(Reason::PROTOCOL_ERROR, _))
    ));
    let empty = frame(kind::DATA, flag::PADDED, 1, b"");
    assert!(matches!(
        read(&empty),
        Err(FrameError::Connection(Reason::FRAME_SIZE_ERROR, _))
    ));
    assert!(matches!(
        read(&frame(kind::DATA, 0, 0, b"x")),
        Err(FrameError::Connection(Reason::PROTOCOL_ERROR, _))
    ));
}

#[test]
fn headers_with_priority_and_padding() {
    let f = frame(
        kind::HEADERS,
        flag::PADDED | flag::PRIORITY | flag::END_HEADERS,
        3,
        b"\x01\x80\0\0\x01\x10\x82z",
    );
    assert_eq!(
        read(&f),
        Ok(Frame::Headers {
            stream: 3,
            end_stream: false,
            end_headers: true,
            priority: Some(Priority {
                exclusive: true,
                depends_on: 1,
                weight: 16
            }),
            block: b"\x82",
        })
    );
    let own = frame(kind::HEADERS, flag::PRIORITY, 3, b"\0\0\0\x03\x10");
    assert!(matches!(
        read(&own),
        Err(FrameError::Stream(3, Reason::PROTOCOL_ERROR, _))
    ));
    let short = frame(kind::HEADERS, flag::PRIORITY, 3, b"\0\0");
    assert!(matches!(
        read(&short),
        Err(FrameError::Connection(Reason::FRAME_SIZE_ERROR, _))
    ));
}

#[test]
fn control_frames_are_checked_for_size_and_stream() {
    assert_eq!(
        read(&frame(kind::RST_STREAM, 0, 5, &[0, 0, 0, 8])),
        Ok(Frame::RstStream {
            stream: 5,
            reason: Reason::CANCEL
        })
    );
    assert!(read(&frame(kind::RST_STREAM, 0, 5, &[0, 0, 8])).is_err());
    assert!(read(&frame(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8])).is_err());
    assert!(read(&frame(kind::SETTINGS, 0, 1, &[])).is_err());
    assert!(read(&frame(kind::SETTINGS, 0, 0, &[0; 5])).is_err());
    assert!(read(&frame(kind::SETTINGS, flag::ACK, 0, &[0; 6])).is_err());
    assert!(read(&frame(kind::PING, 0, 0, &[0; 7])).is_err());
    assert!(read(&frame(kind::PING, 0, 1, &[0; 8])).is_err());
    assert_eq!(
        read(&frame(kind::PING, flag::ACK, 0, b"12345678")),
        Ok(Frame::Ping {
            ack: true,
            payload: *b"12345678"
        })
    );
    assert_eq!(
        read(&frame(kind::GOAWAY, 0, 0, b"\x80\0\0\x09\0\0\0\x0bhi")),
        Ok(Frame::GoAway {
            last_stream: 9,
            reason: Reason::ENHANCE_YOUR_CALM,
            debug: b"hi"
        })
    );
    assert!(read(&frame(kind::GOAWAY, 0, 0, &[0; 7])).is_err());
    assert!(matches!(
        read(&frame(kind::WINDOW_UPDATE, 0, 3, &[0; 4])),
        Err(FrameError::Stream(3, Reason::PROTOCOL_ERROR, _))
    ));
    assert!(matches!(
        read(&frame(kind::WINDOW_UPDATE, 0, 0, &[0; 4])),
        Err(FrameError::Connection(Reason::PROTOCOL_ERROR, _))
    ));
    assert_eq!(
        read(&frame(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 1])),
        Ok(Frame::WindowUpdate {
            stream: 0,
            increment: 1
        })
    );
    assert_eq!(
        read(&frame(0xee, 0, 0, b"anything")),
        Ok(Frame::Unknown {
            kind: 0xee,
            stream: 0
        })
    );
}

#[test]
fn settings_apply_with_their_limits() {
    let mut s = Settings::default();
    let mut p = Vec::new();
    for (id, v) in [
        (1u16, 0u32),
        (3, 100),
        (4, 1 << 20),
        (5, 1 << 20),
        (6, 8192),
        (0x99, 7),
    ] {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    s.apply(&p).unwrap();
    assert_eq!(s.header_table_size, 0);
    assert_eq!(s.max_concurrent_streams, Some(100));
    assert_eq!(s.initial_window_size, 1 << 20);
    assert_eq!(s.max_frame_size, 1 << 20);
    assert_eq!(s.max_header_list_size, Some(8192));
    for (id, v) in [(2u16, 2u32), (4, 1 << 31), (5, 100), (5, 1 << 24), (8, 3)] {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&v.to_be_bytes());
        assert!(Settings::default().apply(&p).is_err(), "{id} = {v}");
    }
}

#[test]
fn a_long_field_block_is_cut_into_continuations() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut b = BytesMut::new();
    b.put_slice(b"before");
    let at = begin_headers(&mut b);
    b.put_slice(&block);
    finish_headers(&mut b, at, 9, true, DEFAULT_MAX_FRAME);
    let mut rest = &b[6..];
    let mut got = Vec::new();
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let h = Head::parse(rest).unwrap();
        let end = HEAD_LEN + h.len as usize;
        match parse(h, &rest[HEAD_LEN..end]).unwrap() {
            Frame::Headers {
                block,
                end_stream,
                end_headers,
                ..
            } => frames.push(("h", end_stream, end_headers, block.len())),
            Frame::Continuation {
                block, end_headers, ..
            } => frames.push(("c", false, end_headers, block.len())),
            f => panic!("{f:?}"),
        }
        got.extend_from_slice(&rest[HEAD_LEN..end]);
        rest = &rest[end..];
    }
    assert_eq!(got, block);
    assert_eq!(
        frames,
        [
            ("h", true, false, 16_384),
            ("c", false, false, 16_384),
            ("c", false, true, 40_000 - 32_768)
        ]
    );
    let mut small = BytesMut::new();
    let at = begin_headers(&mut small);
    small.put_slice(b"\x88");
    finish_headers(&mut small, at, 1, false, DEFAULT_MAX_FRAME);
    assert_eq!(
        &small[..],
        &frame(kind::HEADERS, flag::END_HEADERS, 1, b"\x88")[..]
    );
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panicking(kind in 0u8..12, flags: u8, stream: u32,
                                         payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let f = frame(kind, flags, stream, &payload);
        let h = Head::parse(&f).unwrap();
        if let Ok(Frame::Settings { payload, .. }) = parse(h, &f[HEAD_LEN..]) {
            let _ = Settings::default().apply(payload);
        }
    }
}
