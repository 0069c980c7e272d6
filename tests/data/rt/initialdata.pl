# Request Tracker initial data for maint's tests (rt-setup-database-5 --action insert --datafile ...).
#
# Three queues for maint's tiers (L1 "Help Desk", L2 "Service Desk", L3 "Back End"), the three
# single-value ticket custom fields the rt backend fills (maint-key is what find() searches), a
# privileged user "maint" with the rights the backend needs, "maint-readonly", who may look but
# not change anything, and "maint-no-fields", who may do everything except set custom fields (to
# test how missing rights are reported).

my @tier_queues = ('Help Desk', 'Service Desk', 'Back End');

@Queues = map {
    { Name => $_, Description => "maint tier queue: $_", CorrespondAddress => '', CommentAddress => '' }
} @tier_queues;

@CustomFields = map {
    {
        Name        => $_,
        Type        => 'FreeformSingle',
        LookupType  => 'RT::Queue-RT::Ticket',
        Description => "Set by maint ($_)",
        ApplyTo     => [@tier_queues],
    }
} ('maint-key', 'maint-host', 'maint-check');

@Users = (
    {
        Name         => 'maint',
        Password     => 'maint-lab-api',
        RealName     => 'maint (preventive maintenance)',
        EmailAddress => 'maint@localhost',
        Privileged   => 1,
    },
    {
        Name         => 'maint-readonly',
        Password     => 'maint-lab-readonly',
        RealName     => 'maint without write rights',
        EmailAddress => 'maint-readonly@localhost',
        Privileged   => 1,
    },
    {
        Name         => 'maint-no-fields',
        Password     => 'maint-lab-no-fields',
        RealName     => 'maint without custom field rights',
        EmailAddress => 'maint-no-fields@localhost',
        Privileged   => 1,
    },
);

# Global grants: the backend searches, creates, comments, moves tickets between the tier queues
# and sets their custom fields; ShowTicketComments lets it read its own comments back (delivered()).
@ACL = (
    {
        UserId => 'maint',
        Right  => [qw(
            SeeQueue ShowTicket CreateTicket ModifyTicket CommentOnTicket ShowTicketComments
            SeeCustomField ModifyCustomField SetInitialCustomField
        )],
    },
    {
        UserId => 'maint-readonly',
        Right  => [qw(SeeQueue ShowTicket ShowTicketComments SeeCustomField)],
    },
    {
        UserId => 'maint-no-fields',
        Right  => [qw(SeeQueue ShowTicket CreateTicket ModifyTicket CommentOnTicket ShowTicketComments SeeCustomField)],
    },
);

1;
