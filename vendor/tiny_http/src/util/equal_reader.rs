use std::io::{self, Read};
use std::sync::Arc;

use crate::util::{ReadControl, Unread};

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached
/// when the destructor is called, the remaining bytes will be read and
/// thrown away — or, booking patch, reported to the connection's `ReadControl` when it has
/// one, for the connection's own thread to discard or to close the connection.
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    // booking patch: where to report an unread rest, and whether the connection is then lost
    // whatever its size (the client may wait for `100 Continue` before it sends the body)
    report: Option<(Arc<ReadControl>, bool)>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize) -> EqualReader<R> {
        EqualReader {
            reader,
            size,
            report: None,
        }
    }

    /// booking patch: reports an unread rest to `control` instead of reading it on drop; as
    /// `Unread::Unknown` if `lost_if_unread`.
    pub(crate) fn reporting_to(mut self, control: Arc<ReadControl>, lost_if_unread: bool) -> Self {
        self.report = Some((control, lost_if_unread));
        self
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        if self.size == 0 {
            return;
        }
        match &self.report {
            // booking patch: this allocated a buffer of the whole remaining size (for a
            // `Content-Length` of 10^15, an abort) and read it all on the dropping thread.
            Some((control, true)) => control.left_unread(Unread::Unknown),
            Some((control, false)) => control.left_unread(Unread::Bytes(self.size as u64)),
            None => {
                let mut rest = (&mut self.reader).take(self.size as u64);
                let _ = io::copy(&mut rest, &mut io::sink());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5);

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }
}

#[cfg(test)]
mod booking_tests {
    use super::EqualReader;
    use crate::util::{ReadControl, Unread};
    use std::io::{Cursor, Read};

    #[test]
    fn an_unread_rest_is_reported_not_read() {
        let control = ReadControl::new();
        let mut source = Cursor::new(vec![7u8; 100]);
        {
            let mut body =
                EqualReader::new(&mut source, 1 << 40).reporting_to(control.clone(), false);
            let mut first = [0u8; 10];
            body.read_exact(&mut first).unwrap();
        }
        assert_eq!(control.take_unread(), Unread::Bytes((1 << 40) - 10));
        assert_eq!(source.position(), 10);
        assert_eq!(control.take_unread(), Unread::Nothing);
    }

    #[test]
    fn a_huge_rest_is_drained_through_a_small_buffer() {
        // Without a control the rest is read and thrown away, as before, but without
        // allocating its declared size (this would abort).
        let mut source = Cursor::new(vec![7u8; 100]);
        drop(EqualReader::new(&mut source, usize::MAX));
        assert_eq!(source.position(), 100);
    }
}
